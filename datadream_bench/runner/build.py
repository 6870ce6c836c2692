"""build_cell: a cell rebuilt from its spec alone, in any process.

An executor sends a cell to a worker as its CellSpec (plain JSON), never as live plugin objects or a dataset
manifest; the worker rebuilds the cell with its own plugin registry. Nothing here reads the state of the process
that planned the grid: the dataset is read and checked again from the spec's paths and options (or handed over
already checked, one shared copy per dataset), and its content fingerprint must still be the planned one.
"""

from __future__ import annotations

from pathlib import Path

from ..datasets.adapter import DatasetOptions
from ..datasets.check import prepare_dataset
from ..datasets.fewshot import draw_few_shot
from ..datasets.manifest import DatasetManifest
from ..errors import UsageError
from ..plugins import Registry, load_registry
from ..spec import CellSpec
from .cell import Cell


def run_field_names(config_class) -> list[str]:
    """The config fields that change speed only (batch size): the spec keeps them in `runtime`."""
    return [name for name, info in config_class.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("stage") == "run"]


def load_cell_dataset(spec: CellSpec, registry: Registry) -> tuple[DatasetManifest, dict]:
    """(manifest, check report) of the spec's dataset, read and checked as plan_grid did."""
    adapter = registry.get("datasets", spec.dataset)
    data = spec.data or {}
    if spec.work_dir is None:
        raise ValueError(f"{spec.label()}: the spec names no work dir (made by an older planner?)")
    options = DatasetOptions(data_root=Path(spec.data_root) if spec.data_root else None,
                             work_dir=Path(spec.work_dir), extra=dict(data.get("options", {})))
    return prepare_dataset(adapter, options, shots=[spec.shots], seeds=[spec.seed],
                           skip_bad=data.get("skip_bad", False), max_bad=data.get("max_bad", 0.01),
                           decode=data.get("decode", "all"))


def build_cell(spec: CellSpec, registry: Registry | None = None,
               dataset: tuple[DatasetManifest, dict] | None = None, recorded: dict | None = None) -> Cell:
    """The cell of `spec`, ready to run. registry: this process's plugins (default: loaded now). dataset: the
    (manifest, report) of the spec's dataset when the caller has it checked already; else it is read again.
    recorded: facts the planner found that only go into the record (where each checkpoint was found)."""
    from .grid import provenance

    registry = registry or load_registry()
    method = registry.get("methods", spec.method)
    classifier = registry.get("classifiers", spec.classifier)
    run_fields = {name: spec.runtime[name] for name in run_field_names(method.Config) if name in spec.runtime}
    config = method.Config.model_validate({**spec.method_config, **run_fields})
    classifier_config = classifier.Config.model_validate(spec.classifier_config)
    manifest, report = dataset if dataset is not None else load_cell_dataset(spec, registry)
    if manifest.fingerprint() != spec.inputs.get("dataset"):
        raise UsageError(f"{spec.label()}: the dataset {spec.dataset!r} has changed since the grid was planned "
                         f"(fingerprint {manifest.fingerprint()}, planned {spec.inputs.get('dataset')}); plan again")
    fewshot = draw_few_shot(manifest, spec.seed, spec.shots)
    return Cell(spec, method, config, classifier, classifier_config, manifest, fewshot,
                provenance={**provenance(registry, spec.method, spec.classifier, report), **(recorded or {})})
