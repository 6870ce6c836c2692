"""Entry point of the DISEF-style plugin (group "dd_bench")."""

from datadream_bench import api

from .method import Disef


@api.hookimpl
def register_methods(register):
    register(Disef())
