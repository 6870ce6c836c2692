"""The hooks a dd-bench plugin can implement. Each receives a register(...) callback."""

import pluggy

hookspec = pluggy.HookspecMarker("dd_bench")
hookimpl = pluggy.HookimplMarker("dd_bench")


@hookspec
def register_methods(register):
    """Call register(method_instance) for each generation method the plugin provides."""


@hookspec
def register_classifiers(register):
    """Call register(classifier_instance) for each classifier the plugin provides."""


@hookspec
def register_datasets(register):
    """Call register(dataset_adapter_instance) for each dataset the plugin provides."""


@hookspec
def register_captioners(register):
    """Call register(captioner_instance) for each image captioner the plugin provides."""
