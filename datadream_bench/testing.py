"""For plugin authors: run a method through the whole pipeline (draw, adapt, generate, train, evaluate, store) on
tiny random models in seconds, and check what it produced.

    from datadream_bench.testing import check_method

    def test_my_method(tmp_path):
        check_method("my-method", tmp_path)

A method gets its tiny-profile settings from its `profile_defaults["tiny"]` (few images, few steps).
"""

from __future__ import annotations

from pathlib import Path

from .datasets.images import load_rgb
from .engine.manifest import read_manifest
from .plugins import Registry, load_registry
from .runner import GridOutcome, plan_grid, run_grid
from .runner.cell import artifact_keys
from .runner.workdir import WorkDir
from .spec import RunRequest
from .store import ResultsStore


def tiny_cells(methods: list[str], work_dir: str | Path, registry: Registry | None = None, **request):
    """The cells of `methods` under the tiny profile (demo digits, 2 shots, seed 0 unless given)."""
    request.setdefault("seeds", [0])
    request.setdefault("shots", [2])
    req = RunRequest(methods=methods, profile="tiny", work_dir=Path(work_dir), **request)
    return plan_grid(req, registry or load_registry())


def run_tiny(methods: list[str], work_dir: str | Path, **request) -> GridOutcome:
    return run_grid(tiny_cells(methods, work_dir, **request), work_dir)


def check_method(name: str, work_dir: str | Path, **request) -> list[dict]:
    """Run one method on tiny models and check the contract; returns the store records of its cells."""
    registry = load_registry()
    broken = [p for p in registry.plugins if p.error]
    assert name in registry.methods, (f"method {name!r} is not registered; plugins that failed to load: "
                                      f"{[(p.name, p.error) for p in broken]}")
    cells = tiny_cells([name], work_dir, registry, **request)
    outcome = run_grid(cells, work_dir)
    failed = [(o.spec.label(), o.error) for o in outcome.failed]
    assert not failed, f"cells failed: {failed}"
    store = ResultsStore(WorkDir(work_dir).store)
    records = []
    for cell in cells:
        record = store.record(cell.spec.key())
        assert 0.0 <= record["metrics"]["top1"] <= 100.0
        keys = artifact_keys(cell)
        if "generate" in keys:
            folder = WorkDir(work_dir).generated(name, keys["generate"])
            made = read_manifest(folder / "manifest.jsonl")
            generation = record["generation"]
            assert len(made) == generation["images"] + generation["reused"] > 0, "images missing from the manifest"
            for rec in list(made.values())[:4]:
                image = load_rgb(folder / rec["file"])
                assert image.mode == "RGB" and min(image.size) > 0
        records.append(record)
    return records

