"""A full disk is said as such: a run whose work dir cannot hold the images still to make is refused before any work
(exit 2); a run whose work dir fills mid-generation stops with one line naming the work dir, the space free and the
space the rest needs (exit 1), keeps everything finished, and resumes once space is freed.

Where root can mount, the work dir is a real small tmpfs filled by a file; elsewhere the disk-full error is injected
(DD_BENCH_FULL_AT), and the test says so.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from datadream_bench.artifacts import check_file, write_bytes_atomic
from datadream_bench.diskspace import free_bytes, is_disk_full
from datadream_bench.engine.manifest import records as manifest_records

_spec = importlib.util.spec_from_file_location("fault_matrix", Path(__file__).parents[1] / "benchmarks" / "faults.py")
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

PAGE = 4096


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all but `leave` bytes of folder's filesystem."""
    filler = folder / "filler"
    size = max(0, free_bytes(folder) - leave)
    with open(filler, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        while size > 0:
            n = min(size, len(chunk))
            f.write(chunk[:n])
            size -= n
    return filler


@pytest.fixture
def small_fs(tmp_path):
    folder = tmp_path / "small"
    mounted = mount_tmpfs(folder, "64m")
    yield folder if mounted else None
    if mounted:  # lazily, should a file still be open there
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


WRITERS = {
    "PNG (PIL)": lambda d: Image.fromarray(np.random.randint(0, 255, (256, 256, 3), np.uint8)).save(d / "x.png"),
    "safetensors": lambda d: save_file({"w": torch.randn(256, 256)}, str(d / "x.safetensors")),
    "numpy array": lambda d: np.save(d / "x.npy", np.zeros((256, 256, 4))),
    "JSON text": lambda d: (d / "x.json").write_text(json.dumps(list(range(100_000)))),
    "SQLite row": lambda d: sqlite_row(d / "x.sqlite"),
}


def sqlite_row(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (zeroblob(1000000));")
    finally:
        db.close()


@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
def test_each_library_s_disk_full_error_is_recognised(writer, small_fs):
    if small_fs is None:
        pytest.skip("mounting a small filesystem is not permitted here (the run test below injects the error)")
    fill(small_fs, leave=8 * PAGE)
    with pytest.raises(Exception) as caught:
        WRITERS[writer](small_fs)
    assert is_disk_full(caught.value), repr(caught.value)


def test_a_full_disk_on_an_artifact_write_names_the_file_and_leaves_no_temporary(small_fs):
    if small_fs is None:
        pytest.skip("mounting a small filesystem is not permitted here")
    fill(small_fs, leave=2 * PAGE)
    target = small_fs / "record.json"
    with pytest.raises(OSError) as caught:
        write_bytes_atomic(target, b"x" * (64 * PAGE))
    assert is_disk_full(caught.value) and caught.value.filename == str(target)
    assert str(target) in str(caught.value)  # the one line a user sees names the file
    assert list(small_fs.glob("record.json*")) == []


def test_other_errors_are_not_taken_for_a_full_disk():
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("bad value"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the image failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)  # found through the chain


# Two cells (both settings share one generated set): the disk fills in the first, the second must be said not run.
GRID = ["-m", "zero-shot-sd", "--profile", "tiny", "--seeds", "0", "--batch-size", "1"]
IMAGES = 20  # 5 classes x 4 images (the tiny profile)


def generated(work: Path) -> tuple[Path, list[dict]]:
    """The set's folder and its recorded images (in its block pieces while the set is incomplete)."""
    (pieces,) = (work / "generated").glob("*/*/blocks")
    return pieces.parent, [rec for piece in sorted(pieces.glob("*.jsonl")) for rec in manifest_records(piece)]


@pytest.mark.slow
def test_a_disk_that_fills_mid_generation_stops_the_run_cleanly_and_it_resumes(tmp_path, small_fs):
    matrix.warm_up()  # each run below is forked from a warm clean process (see benchmarks/faults.py)
    run = matrix.forked_dd_bench
    reference = tmp_path / "reference"
    assert run(GRID, reference).returncode == 0
    work = (small_fs or tmp_path / "simulated") / "work"
    # A first run prepares the work dir (the demo dataset's files) and dies as generation starts.
    assert run(GRID, work, kill_at="generate.batch:1").returncode == matrix.KILLED
    if small_fs is not None:
        filler = fill(small_fs, leave=10 * PAGE)  # room for a few images: the disk fills mid-generation
        full = run(GRID, work)
    else:
        print("mounting is not permitted here: the disk-full error is injected at the 3rd image file written")
        full = run(GRID, work, DD_BENCH_FULL_AT="generate.write:3")
    output = full.stdout + full.stderr
    assert full.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in full.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, full.stderr
    assert f"disk full: the work dir {work} has " in errors[0] and "images still to make need about" in errors[0]
    outcome = json.loads(full.stdout)
    assert outcome["stopped"] == errors[0].removeprefix("error: ")
    assert [c["status"] for c in outcome["cells"]] == ["failed"] and outcome["not_run"] == 1
    assert "0 done, 0 already finished, 1 failed, 1 not run" in full.stderr
    assert "No space left on device" in outcome["cells"][0]["error"]  # the cell's own error: the file it could not write
    # Nothing finished is lost: every recorded image is there, whole, as recorded, once; no temporary file is left.
    folder, records = generated(work)
    assert 1 <= len(records) < IMAGES and len({r["id"] for r in records}) == len(records)
    for r in records:
        assert check_file(folder / r["file"], r) is None
        Image.open(folder / r["file"]).load()
    assert matrix.leftovers(work) == []
    if small_fs is not None:
        # Rerun on the still-full disk: the images still to make do not fit at the size measured so far, so the run
        # is refused before any work (exit 2), and nothing changes.
        refused = run(GRID, work)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error")]
        assert line.startswith(f"error: not enough space: the work dir {work} has ") and \
            f"the {IMAGES - len(records)} images still to make need about" in line, line
        assert generated(work)[1] == records
        filler.unlink()
    resumed = run(GRID, work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert matrix.differences(reference, work) == []


@pytest.mark.slow
def test_a_disk_too_full_for_the_decoded_image_cache_decodes_per_batch_instead(tmp_path, small_fs):
    """Real-only: the classifier's decoded-image cache is the big write (it once was a memory map that died of SIGBUS
    on a full disk: no message, the rest of the grid lost). With no room for it, the images are decoded per batch,
    the record says so, and the result is the one a roomy disk gives."""
    if small_fs is None:
        pytest.skip("mounting a small filesystem is not permitted here")
    grid = ["-m", "real-only", "--profile", "tiny", "--seeds", "0"]
    matrix.warm_up()
    run = matrix.forked_dd_bench
    reference = tmp_path / "reference"
    assert run(grid, reference).returncode == 0
    work = small_fs / "work"
    # A first run prepares the work dir (the demo dataset's files) and dies before the classifier decodes anything.
    assert run(grid, work, kill_at="fewshot.saved:1").returncode == matrix.KILLED
    fill(small_fs, leave=64 * PAGE)  # room for the small records, not for the decoded splits (~1.7 MB)
    ran = run(grid, work)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    with sqlite3.connect(work / "results.sqlite") as db:
        (record,) = [r for (r,) in db.execute("SELECT record FROM results")]
    assert "decoded per batch" in record
    assert matrix.store_rows(work) == matrix.store_rows(reference)
    assert matrix.leftovers(work) == []
