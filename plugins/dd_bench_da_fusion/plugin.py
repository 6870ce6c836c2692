"""Entry point of the DA-Fusion plugin (group "dd_bench")."""

from datadream_bench import api

from .method import DaFusion


@api.hookimpl
def register_methods(register):
    register(DaFusion())
