"""Entry point of the IsSynth-style plugin (group "dd_bench")."""

from datadream_bench import api

from .method import IsSynth


@api.hookimpl
def register_methods(register):
    register(IsSynth())
