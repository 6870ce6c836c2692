"""Entry point of the DataDream plugin (group "dd_bench")."""

from datadream_bench import api

from .method import DataDreamClassWise, DataDreamDatasetWise


@api.hookimpl
def register_methods(register):
    register(DataDreamClassWise())
    register(DataDreamDatasetWise())
