"""The fault matrix: a real `dd-bench run` killed with SIGKILL at named points of every stage, then rerun, ends with
the same images, LoRAs, classifier states and store rows as a run never interrupted, no image recorded twice, no
temporary file left behind and one row per cell.

The kills form one chain over one work dir: each rerun resumes what the previous kill left and is itself killed at
the next point (counts are per process: `generate.write:5` is the 5th image file this process writes); the last
rerun is not killed and finishes. The tiny profile keeps each rerun to a second or two; benchmarks/faults.py runs the
same on the demo.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datadream_bench import faults

_spec = importlib.util.spec_from_file_location("fault_matrix", Path(__file__).parents[1] / "benchmarks" / "faults.py")
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

# Two methods with all that can be cut: DataDream's class-wise LoRAs (a unit per class) and DISEF's captions, filter
# and its rejection log; both settings (the second reuses the generated set); 4 images per class in batches of 2, so
# bytes are compared at a batch size above 1 (that a rerun re-forms the lost batches exactly is checked on the
# batches themselves in tests/engine/test_filtering.py: at 32 px, a batch of another make-up may still be identical).
GRID = ["-m", "datadream-cls,disef", "--profile", "tiny", "--seeds", "0", "--batch-size", "2",
        "--set", "images_per_class=4"]
CELLS = 4

# The cells run in this order: datadream-cls synthetic, datadream-cls synthetic+real, disef synthetic, disef
# synthetic+real. Each entry is where one rerun dies (22 kills; benchmarks/faults.py runs 50+ on the demo).
CHAIN = [
    # datadream-cls, synthetic: few-shot draw, the class LoRAs, generation, training, evaluation, store
    "fewshot.draw:1",
    "fewshot.saved:1",
    "adapt.unit:1",
    "adapt.saved:1",  # the first LoRA on disk without its record: made again
    "adapt.saved:2",
    "generate.batch:1",
    "generate.write:1",  # an image's temporary file written, not renamed
    "generate.recorded:2",
    "generate.write:5",
    "train.start:1",
    "train.step:2",
    "train.saved:1",  # the state on disk, its train.json not
    "evaluate.start:1",
    "store.write:1",  # the row inside an open SQLite transaction
    # datadream-cls, synthetic+real (the generated set reused)
    "train.step:1",
    "store.written:1",
    # disef, synthetic: captions per class, filtered generation
    "adapt.unit:2",
    "filter.judged:1",
    "generate.write:3",
    "generate.recorded:2",
    # disef, synthetic+real
    "train.step:2",
    "store.write:1",
]


def test_the_chain_names_every_point():
    assert {p.split(":")[0] for p in CHAIN} == set(faults.POINTS)


def test_a_point_is_inert_without_the_variable_and_an_unknown_point_is_refused():
    quiet = subprocess.run([sys.executable, "-c", "from datadream_bench import faults; faults.point('store.write'); "
                            "print('alive')"], capture_output=True, text=True, env={"PATH": ""})
    assert quiet.stdout.strip() == "alive"
    unknown = subprocess.run([sys.executable, "-c", "import datadream_bench.faults"], capture_output=True, text=True,
                             env={"DD_BENCH_KILL_AT": "nowhere:1"})
    assert unknown.returncode != 0 and "unknown point 'nowhere'" in unknown.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid run once, never interrupted: what every check below must end with. Each run of this file is a child
    forked from a clean process that has imported the libraries (a fresh interpreter spends ~5 s importing them:
    two dozen runs would not fit the file's budget); benchmarks/faults.py uses fresh interpreters."""
    matrix.warm_up()
    work = tmp_path_factory.mktemp("reference")
    ran = matrix.forked_dd_bench(GRID, work)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return work


@pytest.mark.slow
def test_every_kill_resumes_to_the_uninterrupted_result(reference, tmp_path):
    result = matrix.run_chain(GRID, CHAIN, reference, tmp_path / "killed", runner=matrix.forked_dd_bench)
    assert result["not_reached"] == [], "these runs were not killed where the chain expected"
    assert result["problems"] == []
    assert result["killed"] == len(CHAIN) >= 20 and result["cells"] == CELLS


@pytest.mark.slow
def test_a_run_killed_beside_another_on_one_work_dir_loses_nothing(reference, tmp_path):
    """Two runs on one work dir; the first dies (SIGKILL) holding claims on its cell and an adapt unit, a LoRA on
    disk without its record. The second, waiting on those claims, takes them over and finishes the whole grid."""
    work = tmp_path / "work"
    first = matrix.Forked(GRID, work, kill_at="adapt.saved:2")
    deadline = time.monotonic() + 120
    while not list(work.glob("cells/*.claim")) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = matrix.Forked(GRID, work)
    killed, finished = first.wait(), second.wait()
    assert killed.returncode == matrix.KILLED, killed.stderr[-3000:]
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert sorted(c["status"] for c in json.loads(finished.stdout)["cells"]) == ["done"] * CELLS
    assert matrix.differences(reference, work) == []
