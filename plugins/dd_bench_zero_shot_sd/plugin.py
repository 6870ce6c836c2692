"""Entry point of the zero-shot SD plugin (group "dd_bench")."""

from datadream_bench import api

from .method import ZeroShotSD


@api.hookimpl
def register_methods(register):
    register(ZeroShotSD())
