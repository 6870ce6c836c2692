"""Every artifact is checked before it is reused: a damaged LoRA, adapt record, classifier state or train.json is
reported with its path and made again, and what is made again is the same bytes as before."""

import json
import logging
import sqlite3

import pytest

from datadream_bench.plugins import load_registry
from datadream_bench.runner import run_grid
from datadream_bench.runner.cell import artifact_keys
from datadream_bench.runner.workdir import WorkDir
from datadream_bench.testing import tiny_cells


def forget_row(work_dir, key):
    with sqlite3.connect(work_dir / "results.sqlite") as db:
        db.execute("DELETE FROM results WHERE cell_key = ?", (key,))


def cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A DataDream (dataset-wise) cell run once: its artifacts are the reference bytes."""
    work = tmp_path_factory.mktemp("reuse")
    cell = tiny_cells(["datadream-dset"], work, load_registry(), settings=["synthetic"])[0]
    outcome = run_grid([cell], work).outcomes[0]
    assert outcome.status == "done", outcome.error
    keys = artifact_keys(cell)
    wd = WorkDir(work)
    adapt, classifier = wd.adapt(cell.spec.method, keys["adapt"]), wd.classifier(keys["classifier"])
    files = {
        "lora": next(adapt.glob("*.safetensors")), "adapt record": next(adapt.glob("*.json")),
        "state": classifier / "state.safetensors", "train.json": classifier / "train.json",
    }
    return work, cell, files, {name: f.read_bytes() for name, f in files.items()}


@pytest.mark.parametrize("artifact,damage", [("lora", cut), ("adapt record", flip), ("state", flip),
                                             ("train.json", cut)])
def test_a_damaged_artifact_is_reported_and_made_again(finished, artifact, damage, caplog):
    work, cell, files, reference = finished
    damage(files[artifact])
    forget_row(work, cell.spec.key())
    with caplog.at_level(logging.WARNING, logger="dd_bench"):
        outcome = run_grid([cell], work).outcomes[0]
    assert outcome.status == "done", outcome.error
    assert f"corrupted artifact {files[artifact]}" in caplog.text
    # made again, the same bytes (the records also hold how long things took: that may differ)
    assert {name: content(name, f.read_bytes()) for name, f in files.items()} == {
        name: content(name, data) for name, data in reference.items()}


def content(name, data):
    """The bytes of a file, or for a record what it says apart from how long things took and whether the decoded
    images were made or found in the cache."""
    if name in ("adapt record", "train.json"):
        return untimed(json.loads(data)["record"])
    return data


def untimed(obj):
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items()
                if "seconds" not in k and "per_second" not in k and k != "cache"}
    return obj
