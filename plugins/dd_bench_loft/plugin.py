"""Entry point of the LoFT plugin (group "dd_bench")."""

from datadream_bench import api

from .method import Loft


@api.hookimpl
def register_methods(register):
    register(Loft())
