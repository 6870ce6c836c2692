"""Cells are keyed by what models contain, never by how their path is spelled: new weights at the same path (same
size, written in place) recompute every cell that depends on them and no other; the same folder under three
spellings is one cell."""

import os
from pathlib import Path

import pytest
import torch

from datadream_bench.models import loading, tiny
from datadream_bench.runner import run_grid
from datadream_bench.store import ResultsStore
from datadream_bench.testing import tiny_cells

METHODS = ["zero-shot-sd", "zero-shot-clip"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_in_place(target: Path, source: Path) -> None:
    """Overwrite target's bytes with source's: same size, same inode, only the content and mtime change."""
    data, before = source.read_bytes(), os.stat(target)
    assert len(data) == before.st_size
    with open(target, "r+b") as f:
        f.write(data)
    assert os.stat(target).st_ino == before.st_ino


def run(work, sd, clip):
    cells = tiny_cells(METHODS, work, settings=["synthetic"], sd_model=str(sd), clip_model=str(clip))
    outcome = run_grid(cells, work)
    return {o.spec.method: o for o in outcome.outcomes}, {c.spec.method: c for c in cells}


def test_an_in_place_weight_swap_recomputes_every_dependent_cell(tmp_path):
    sd, clip = tiny.save_tiny_sd(tmp_path / "sd", 0), tiny.save_tiny_clip(tmp_path / "clip", 0)
    work = tmp_path / "work"
    first, cells = run(work, sd, clip)
    assert {m: o.status for m, o in first.items()} == {m: "done" for m in METHODS}

    # new CLIP weights: both cells train or evaluate with CLIP, so both run again; SD did not change, so the
    # generated images are reused
    write_in_place(clip / "model.safetensors", tiny.save_tiny_clip(tmp_path / "clip-1", 1) / "model.safetensors")
    second, cells2 = run(work, sd, clip)
    assert {m: o.status for m, o in second.items()} == {m: "done" for m in METHODS}
    store = ResultsStore(work / "results.sqlite")
    record = store.record(second["zero-shot-sd"].spec.key())
    assert record["generation"]["images"] == 0 and record["generation"]["reused"] > 0
    assert cells2["zero-shot-sd"].spec.inputs["clip"] != cells["zero-shot-sd"].spec.inputs["clip"]

    # new UNet weights: the generated set is made again; zero-shot CLIP does not use SD and is not run again
    unet = Path("unet") / "diffusion_pytorch_model.safetensors"
    write_in_place(sd / unet, tiny.save_tiny_sd(tmp_path / "sd-1", 1) / unet)
    third, _ = run(work, sd, clip)
    assert third["zero-shot-sd"].status == "done" and third["zero-shot-clip"].status == "skipped"
    record = store.record(third["zero-shot-sd"].spec.key())
    assert record["generation"]["images"] > 0 and record["generation"]["reused"] == 0


def test_one_model_folder_under_three_spellings_is_one_cell(tmp_path, monkeypatch):
    models = tmp_path / "models"
    tiny.save_tiny_sd(models / "sd", 0), tiny.save_tiny_clip(models / "clip", 0)
    (tmp_path / "link").symlink_to(models)
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    spellings = [("models/sd", "models/clip"), (str(models / "sd"), str(models / "clip")),
                 (str(tmp_path / "link" / "sd") + "/", "./link/../models/clip")]
    keys = [sorted(c.spec.key() for c in tiny_cells(METHODS, work, settings=["synthetic"], sd_model=sd,
                                                    clip_model=clip)) for sd, clip in spellings]
    assert keys[0] == keys[1] == keys[2]

    first = run_grid(tiny_cells(METHODS, work, settings=["synthetic"], sd_model="models/sd",
                                clip_model="models/clip"), work)
    assert [o.status for o in first.outcomes] == ["done", "done"]
    loading._LOADED.clear()
    again = run_grid(tiny_cells(METHODS, work, settings=["synthetic"], sd_model=spellings[2][0],
                                clip_model=spellings[2][1]), work)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    rows = ResultsStore(work / "results.sqlite").rows()
    assert sorted((r["method"], r["seed"]) for r in rows) == [("zero-shot-clip", 0), ("zero-shot-sd", 0)]
    # the spelling of the run that made the row is kept in its record
    record = ResultsStore(work / "results.sqlite").record(first.outcomes[0].spec.key())
    assert record["spec"]["sd_model"] == "models/sd"
