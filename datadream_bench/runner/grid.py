"""From a RunRequest to cells, checked before any expensive work; then the cells, each on its own.

Everything that can be wrong with the request (a name, a setting, a dataset, a missing model) is found by
plan_grid, which loads no model: a usage error costs seconds, never a half-finished grid.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..checks import check_request
from ..config import resolve_config, route_overrides
from ..datasets.adapter import DatasetOptions
from ..datasets.check import prepare_dataset
from ..datasets.fewshot import draw_few_shot
from ..errors import ModelNotFoundError, UsageError
from ..fingerprint import code_fingerprint, fingerprint
from ..method import SETTINGS, stage_fields
from ..models import loading
from ..models.checkpoint import open_checkpoint
from ..plugins import Registry
from ..profiles import get_profile
from ..spec import CellSpec, RunRequest
from ..store import ResultsStore
from ..store.planned import PlannedCells
from ..validation import check_required_models
from .cell import DTYPES, Cell
from .events import CellOutcome, Reporter
from .workdir import WorkDir

log = logging.getLogger("dd_bench")


@dataclass
class GridOutcome:
    outcomes: list[CellOutcome] = field(default_factory=list)
    stopped: str | None = None  # why the grid stopped before its last cell (a full disk), if it did

    def with_status(self, status: str) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[CellOutcome]:
        return self.with_status("failed")


def expand(names: list[str], table: dict, kind: str, include=lambda obj: True, registry=None) -> list[str]:
    out: list[str] = []
    for name in names:
        chosen = [n for n, obj in table.items() if include(obj)] if name == "all" else [name]
        for n in chosen:
            if n not in table and registry is not None:
                registry.get(kind + "s", n)  # says why an installed plugin's entry is not usable
            if n not in table:
                valid = ", ".join(sorted(table)) or "(none installed)"
                raise UsageError(f"unknown {kind} {n!r}; valid {kind}s: {valid}, or all")
            if n not in out:
                out.append(n)
    return out


def settings_for(method, requested: list[str] | None) -> list[str]:
    """A generating method runs the requested settings it supports; a reference row always runs its own."""
    if requested is None or not method.generates:
        return list(method.settings)
    return [s for s in requested if s in method.settings]


def plan_grid(request: RunRequest, registry: Registry,
              progress: Callable[[str, int, int], None] = lambda what, done, total: None,
              devices_here: bool = True) -> list[Cell]:
    """progress: told how the dataset checks go (they read every file once; a large dataset takes a while).
    devices_here False: the cells run on a cluster's workers, whose devices this machine need not have."""
    # values, device, work dir and store: before any name is resolved or file read
    check_request(request, devices_here=devices_here)
    profile = get_profile(request.profile)
    for plugin in registry.plugins:  # "all" means every usable method: say which plugins were left out and why
        if plugin.error:
            log.warning("plugin %s is not used: %s", plugin.name, plugin.error)
    methods = {m: registry.get("methods", m)
               for m in expand(request.methods, registry.methods, "method", registry=registry)}
    classifier = registry.get("classifiers", request.classifier)
    datasets = dataset_keys(request, registry, profile)
    shots = request.shots or [profile.default_shots]
    if not request.seeds:
        raise UsageError("no seeds given")
    configs, classifier_config = resolve_configs(request, methods, classifier, profile.name)
    settings = method_settings(request, methods)

    device = request.device or loading.default_device()
    precision = request.precision or {v: k for k, v in DTYPES.items()}[loading.default_dtype(device)]
    if precision not in DTYPES:
        raise UsageError(f"unknown precision {precision!r}; valid: {', '.join(DTYPES)}")
    sd_model = request.sd_model or profile.sd_model
    clip_model = request.clip_model or profile.clip_model
    models = ModelCheck(WorkDir(request.work_dir).root / "cache" / "files.sqlite")
    # Every checkpoint a cell will load is opened now (headers read, nothing loaded): a missing or broken file is a
    # usage error before any work. Their content fingerprints key every artifact.
    clip_fp = models.fingerprint(clip_model, "clip", "fp32", "--clip-model")
    generates = any(o.generates for o in methods.values())
    sd_fp = models.fingerprint(sd_model, "sd", precision, "--sd-model") if generates else None
    # Models a method loads itself (a filter's CLIP, a captioner): found now, never missed halfway through a grid.
    own_models = {m: method_models(m, o, configs[m], clip_model, models) for m, o in methods.items()}

    cells: list[Cell] = []
    for dataset_key in datasets:
        manifest, data_report = load_dataset(request, registry, dataset_key, shots, progress)
        data_fp = manifest.fingerprint()
        # The names prompts spell (DataDream's or CoOp's) change results but not the data: keyed on their own.
        prompts_fp = fingerprint([manifest.prompt(label) for label in range(len(manifest.classes))])
        for seed in request.seeds:
            for k in shots:
                fewshot = draw_few_shot(manifest, seed, k)
                for m, method in methods.items():
                    config = configs[m]
                    run_fields = stage_fields(config, "run")
                    runtime = {"device": device, "batch_size": 8, **run_fields, "compile": request.compile}
                    if request.batch_size:
                        runtime["batch_size"] = request.batch_size
                    own = {name: fp for name, (_, _, fp) in own_models[m].items()}
                    inputs = {"dataset": data_fp, "prompts": prompts_fp, "sd": sd_fp if method.generates else None,
                              "clip": clip_fp,
                              **({"models": own} if own else {}),
                              # the plugins' source: an edited method or classifier never meets its old results
                              "code": {"method": code_fingerprint(method), "classifier": code_fingerprint(classifier)}}
                    # where each checkpoint was found and which of its files load: recorded, never keyed
                    found = {"clip": models.describe(clip_model, "clip"),
                             **({"sd": models.describe(sd_model, "sd", precision)} if method.generates else {}),
                             **{name: models.describe(source, kind) for name, (source, kind, _) in own_models[m].items()}}
                    for setting in settings[m]:
                        spec = CellSpec(
                            method=m, dataset=dataset_key, shots=k, seed=seed, setting=setting,
                            classifier=classifier.name, profile=profile.name,
                            sd_model=sd_model if method.generates else "", clip_model=clip_model,
                            method_config={name: value for name, value in config.model_dump(mode="json").items()
                                           if name not in run_fields},
                            classifier_config=classifier_config.model_dump(mode="json"), precision=precision,
                            inputs=inputs, data_root=data_root(request),
                            runtime=runtime, data=data_options(request, dataset_key),
                            work_dir=str(WorkDir(request.work_dir).root),
                        )
                        cells.append(Cell(spec, method, config, classifier, classifier_config, manifest, fewshot,
                                          provenance={**provenance(registry, m, classifier.name, data_report),
                                                      "models": found}))
    return cells


def dataset_keys(request: RunRequest, registry: Registry, profile) -> list[str]:
    if request.datasets:
        return expand(request.datasets, registry.datasets, "dataset", include=lambda a: a.needs_data_root)
    if profile.default_dataset is None:
        raise UsageError(f"profile {profile.name!r} has no default dataset: give --dataset")
    log.info("no --dataset given: running on the built-in demo (%s)", profile.default_dataset)
    return [profile.default_dataset]


def resolve_configs(request: RunRequest, methods: dict, classifier, profile: str) -> tuple[dict, object]:
    """Each method's and the classifier's validated config: paper defaults < profile defaults < --set."""
    per_method, for_classifier = route_overrides(request.overrides, {m: o.Config for m, o in methods.items()},
                                                 classifier.name)
    configs = {m: resolve_config(m, o.Config, o.profile_defaults, profile, per_method[m])
               for m, o in methods.items()}
    classifier_config = resolve_config(classifier.name, classifier.Config, classifier.profile_defaults, profile,
                                       for_classifier)
    return configs, classifier_config


def method_settings(request: RunRequest, methods: dict) -> dict[str, list[str]]:
    bad = [s for s in request.settings or [] if s not in SETTINGS]
    if bad:
        raise UsageError(f"unknown setting(s) {bad}; valid: {', '.join(SETTINGS)}")
    settings = {m: settings_for(o, request.settings) for m, o in methods.items()}
    empty = [m for m, s in settings.items() if not s]
    if empty:
        raise UsageError(f"{', '.join(empty)}: none of the requested settings {request.settings} applies "
                         f"(supported: {', '.join(f'{m}: {list(methods[m].settings)}' for m in empty)})")
    return settings


def load_dataset(request: RunRequest, registry: Registry, key: str, shots: list[int],
                 progress: Callable[[str, int, int], None] = lambda what, done, total: None):
    """(manifest, validation report) of one dataset, every problem found before any model loads."""
    adapter = registry.get("datasets", key)
    extra = dataset_extra(request, key)
    if adapter.needs_data_root and request.data_root is None and "path" not in extra:
        raise UsageError(f"dataset {key!r} needs --data-root (the folder that holds your copy of it)")
    root = data_root(request)
    options = DatasetOptions(data_root=Path(root) if root else None, work_dir=WorkDir(request.work_dir).root,
                             extra=extra)
    return prepare_dataset(adapter, options, shots=shots, seeds=request.seeds, skip_bad=request.skip_bad,
                           max_bad=request.max_bad, decode=request.decode, progress=progress)


def data_options(request: RunRequest, key: str) -> dict:
    """How build_cell reads the dataset again in another process: the same options and checks as here."""
    return {"options": dataset_extra(request, key), "decode": request.decode,
            "skip_bad": request.skip_bad, "max_bad": request.max_bad}


# Dataset options that name a file or folder (--dataset-opt eurosat.split_file=...).
PATH_OPTIONS = ("path", "split_file", "class_map", "classes", "images", "hf_cache")


def dataset_extra(request: RunRequest, key: str) -> dict:
    """The dataset's options, with the files and folders they name made absolute, as data_root is: a Ray worker or
    a later run from another directory reads the same files."""
    extra = dict(request.dataset_options.get(key, {}))
    for option in PATH_OPTIONS:
        if isinstance(extra.get(option), str) and extra[option]:
            extra[option] = os.path.abspath(os.path.expanduser(extra[option]))
    return extra


def data_root(request: RunRequest) -> str | None:
    """Absolute, so that sample paths never depend on the current directory of the process that reads them."""
    return str(request.data_root.expanduser().resolve()) if request.data_root else None


class ModelCheck:
    """Opens each checkpoint once (checkpoint.open_checkpoint) and fingerprints it by content, remembering file
    digests in the work directory's file cache so that a second plan reads no weight file again."""

    def __init__(self, cache_path):
        from ..datasets.filecache import FileCache

        self.cache = FileCache(cache_path)
        self.opened: dict[tuple, tuple] = {}

    def open(self, source: str, kind: str, precision: str = "fp32", option: str | None = None):
        key = (source, kind, precision)
        if key not in self.opened:
            checkpoint = open_checkpoint(source, kind, precision, option)
            self.opened[key] = (checkpoint, checkpoint.fingerprint(self.cache))
        return self.opened[key]

    def fingerprint(self, source: str, kind: str, precision: str = "fp32", option: str | None = None) -> str:
        return self.open(source, kind, precision, option)[1]

    def describe(self, source: str, kind: str, precision: str = "fp32") -> dict:
        """Where an opened checkpoint was found and which files it loads (the spelling is recorded here only)."""
        return self.opened[(source, kind, precision)][0].describe()


def method_models(name: str, method, config, clip_model: str, models: ModelCheck) -> dict[str, tuple]:
    """setting -> (source, kind, fingerprint) of each model the method's required_models(config, clip_model) names
    as (setting, kind, source); a missing or unreadable one is a usage error naming the setting."""
    out = {}
    for setting, kind, source in check_required_models(method, method.required_models(config, clip_model)):
        try:
            out[setting] = (source, kind, models.fingerprint(source, kind, "fp32", f"{name}.{setting}"))
        except ModelNotFoundError as e:
            raise ModelNotFoundError(f"{name}: setting {setting}={source!r} names a {kind} model that is not on this "
                                     f"machine (point it at a local folder with --set {name}.{setting}=PATH). {e}"
                                     ) from None
    return out


def provenance(registry: Registry, method: str, classifier: str, data_report: dict) -> dict:
    versions = {p.name: p.version for p in registry.plugins}
    method_plugin = registry.owner[("methods", method)]
    classifier_plugin = registry.owner[("classifiers", classifier)]
    return {
        "method_plugin": method_plugin, "method_version": versions.get(method_plugin),
        "classifier_plugin": classifier_plugin, "classifier_version": versions.get(classifier_plugin),
        "dataset": data_report,
    }


def run_grid(cells: list[Cell], work_dir, reporter: Reporter | None = None, executor=None) -> GridOutcome:
    """Run each cell; a failing cell is recorded and the others still run. executor: where the cells run
    (default: one after another in this process; see runner.executor and runner.ray_executor)."""
    from .executor import LocalExecutor

    executor = executor or LocalExecutor()
    workdir = WorkDir(work_dir)
    store = ResultsStore(workdir.store)
    # The grid asked for, kept beside the results: the leaderboard marks what of it is missing.
    PlannedCells(workdir.store).add([(c.spec.key(), c.spec.model_dump(mode="json"), c.provenance) for c in cells])
    return executor.run(cells, workdir, store, reporter or Reporter())
