"""For plugin authors: check a method, a classifier or a dataset against the contract by running it through the whole
pipeline (draw, adapt, generate, train, evaluate, store) on tiny random models in seconds; and pytest fixtures to
run a method's stages directly.

    from datadream_bench.testing import check_classifier, check_dataset, check_method

    def test_my_method(tmp_path):
        check_method("my-method", tmp_path)

The fixtures (tiny_pipe, digits, make_ctx, recording_sampler) come with the pytest plugin: installed with dd-bench
(entry point `datadream_bench.testing` in the pytest11 group), or named with `pytest -p datadream_bench.testing`.
A method gets its tiny-profile settings from its `profile_defaults["tiny"]` (few images, few steps).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def tiny_cells(methods: list[str], work_dir: str | Path, registry=None, **request):
    """The cells of `methods` under the tiny profile (demo digits, 2 shots, seed 0 unless given)."""
    from .plugins import load_registry
    from .runner import plan_grid
    from .spec import RunRequest

    request.setdefault("seeds", [0])
    request.setdefault("shots", [2])
    req = RunRequest(methods=methods, profile="tiny", work_dir=Path(work_dir), **request)
    return plan_grid(req, registry or load_registry())


def run_tiny(methods: list[str], work_dir: str | Path, **request):
    from .runner import run_grid

    return run_grid(tiny_cells(methods, work_dir, **request), work_dir)


def _registry_with(kind: str, name: str):
    from .plugins import load_registry

    registry = load_registry()
    if name not in getattr(registry, kind):
        rejected = registry.rejected.get((kind, name))
        broken = [(p.name, p.error) for p in registry.plugins if p.error]
        raise AssertionError(rejected or f"{kind[:-1]} {name!r} is not registered; plugins that failed to load: "
                                         f"{broken}")
    return registry


def _run_and_read(cells, work_dir) -> list[dict]:
    from .engine.manifest import read_manifest
    from .datasets.images import load_rgb
    from .runner import run_grid
    from .runner.cell import artifact_keys
    from .runner.workdir import WorkDir
    from .store import ResultsStore

    outcome = run_grid(cells, work_dir)
    failed = [(o.spec.label(), o.error) for o in outcome.failed]
    assert not failed, f"cells failed: {failed}"
    store = ResultsStore(WorkDir(work_dir).store)
    records = []
    for cell in cells:
        record = store.record(cell.spec.key())
        assert 0.0 <= record["metrics"]["top1"] <= 100.0
        assert record["metrics"]["n"] == len(cell.dataset.split("test"))
        keys = artifact_keys(cell)
        if "generate" in keys:
            folder = WorkDir(work_dir).generated(cell.spec.method, keys["generate"])
            made = read_manifest(folder / "manifest.jsonl")
            generation = record["generation"]
            assert len(made) == generation["images"] + generation["reused"] > 0, "images missing from the manifest"
            for rec in list(made.values())[:4]:
                image = load_rgb(folder / rec["file"])
                assert image.mode == "RGB" and min(image.size) > 0
        records.append(record)
    return records


def check_method(name: str, work_dir: str | Path, **request) -> list[dict]:
    """Run one method on tiny models in each of its settings and check the contract; returns the store records of
    its cells. The classifier is the built-in clip-lora."""
    registry = _registry_with("methods", name)
    return _run_and_read(tiny_cells([name], work_dir, registry, **request), work_dir)


def check_classifier(name: str, work_dir: str | Path, methods: tuple[str, ...] = ("zero-shot-clip", "real-only",
                                                                                  "zero-shot-sd"),
                     **request) -> list[dict]:
    """Train and evaluate a classifier on tiny models in every setting (none, real, synthetic, synthetic+real: the
    default methods cover all four); returns the store records. Checks that train() returns tensors (saved as
    safetensors), that evaluate() reports top1 in [0, 100] and n = the test split, and that a second run reuses
    the saved state."""
    registry = _registry_with("classifiers", name)
    cells = tiny_cells(list(methods), work_dir, registry, classifier=name, **request)
    records = _run_and_read(cells, work_dir)
    from .runner.cell import artifact_keys, run_cell
    from .runner.events import Reporter
    from .runner.workdir import WorkDir
    from .store import ResultsStore

    # The cell run again (into a second store) reads the saved state back instead of training again.
    cell = next(c for c in cells if c.spec.setting != "none")
    workdir = WorkDir(work_dir)
    assert (workdir.classifier(artifact_keys(cell)["classifier"]) / "state.safetensors").exists()
    store = ResultsStore(workdir.root / "check-classifier-rerun.sqlite")
    outcome = run_cell(cell, workdir, store, Reporter())
    assert outcome.status == "done" and store.record(cell.spec.key())["reused"]["classifier"] is True
    return records


def check_dataset(key: str, work_dir: str | Path, *, data_root: str | Path | None = None, shots: int = 2,
                  options: dict | None = None, **request) -> dict:
    """Load a dataset through its adapter, validate it as `dd-bench run` does, check what a cell relies on, and run
    the real-only reference cell on it with tiny models; returns that cell's record.

    Checks: classes named and as many as the adapter declares; train and test splits; labels in range; every class
    with at least `shots` train images; the few-shot draw deterministic in the seed and nested in k; the first
    images of each split readable as RGB.
    """
    from .datasets.adapter import DatasetOptions
    from .datasets.check import prepare_dataset
    from .datasets.fewshot import draw_few_shot
    from .datasets.images import load_rgb

    registry = _registry_with("datasets", key)
    adapter = registry.datasets[key]
    options = DatasetOptions(data_root=Path(data_root) if data_root else None, work_dir=Path(work_dir),
                             extra=dict(options or {}))
    manifest, _ = prepare_dataset(adapter, options, shots=(shots,), seeds=(0,))
    assert manifest.classes and all(isinstance(c, str) and c for c in manifest.classes), "classes must be named"
    if adapter.num_classes is not None:
        assert len(manifest.classes) == adapter.num_classes, (
            f"{key} declares {adapter.num_classes} classes and loads {len(manifest.classes)}")
    for split in ("train", "test"):
        assert manifest.split(split), f"{key} has no {split} split"
        labels = {s.label for s in manifest.split(split)}
        assert labels <= set(range(len(manifest.classes))), f"{key}: {split} labels outside 0..{len(manifest.classes)}"
        for sample in manifest.split(split)[:3]:
            assert load_rgb(sample.path).mode == "RGB"
    small = [c for c, group in zip(manifest.classes, manifest.by_class("train")) if len(group) < shots]
    assert not small, f"{key}: classes with fewer than {shots} train images: {small[:3]}"
    draw = draw_few_shot(manifest, 0, shots)
    assert draw == draw_few_shot(manifest, 0, shots), "the few-shot draw must be a function of (dataset, seed, k)"
    if shots > 1:
        smaller = draw_few_shot(manifest, 0, shots - 1)
        assert all(s[: shots - 1] == t for s, t in zip(draw.shots, smaller.shots)), "draws must be nested in k"
    dataset_options = {key: dict(options.extra)} if options.extra else {}
    cells = tiny_cells(["real-only"], work_dir, registry, datasets=[key], shots=[shots], data_root=data_root,
                       dataset_options=dataset_options, **request)
    (record,) = _run_and_read(cells, work_dir)
    return record


# ---- pytest fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_pipe():
    """The tiny random Stable Diffusion pipeline, loaded once (the same object the runner gets for "tiny:0")."""
    from .models.loading import load_sd

    return load_sd("tiny:0")


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """The demo digits dataset (0-4), written once per session."""
    from .datasets.demo import demo_dataset

    return demo_dataset(tmp_path_factory.mktemp("digits"))


@pytest.fixture
def make_ctx(digits, tiny_pipe):
    """make_ctx(method, shots=2, seed=0, progress=None, **overrides): a CellContext on the demo digits and the tiny
    random SD, with the method's tiny-profile config and the overrides applied: run adapt/plan/sample directly."""
    import torch

    from .context import CellContext, shots_for
    from .datasets.fewshot import draw_few_shot
    from .spec import CellSpec

    def make(method, shots: int = 2, seed: int = 0, progress=None, **overrides):
        config = method.Config(**{**method.profile_defaults.get("tiny", {}), **overrides})
        spec = CellSpec(
            method=method.name, dataset=digits.key, shots=shots, seed=seed, setting="synthetic",
            classifier="clip-lora", profile="tiny", sd_model="tiny:0", clip_model="tiny:0",
            method_config=config.model_dump(mode="json"), classifier_config={},
        )
        ctx = CellContext(spec=spec, config=config, dataset=digits,
                          fewshot=shots_for(method, draw_few_shot(digits, seed, shots)), device="cpu",
                          dtype=torch.float32)
        if progress is not None:
            ctx.progress = progress
        return ctx

    return make


class RecordingSampler:
    """Stands in for the engine's Sampler: records the sampling arguments a method passes, makes no images."""

    def __init__(self):
        self.calls: list[dict] = []

    def text_to_image(self, batch, **kw):
        self.calls.append(kw)
        return [object() for _ in batch]

    def image_to_image(self, batch, **kw):
        self.calls.append(kw)
        return [object() for _ in batch]


@pytest.fixture
def recording_sampler():
    """recording_sampler(): a sampler that records each call's keyword arguments (in .calls) and returns
    placeholders, for checking what a method's sample() asks for without running diffusion."""
    return RecordingSampler
