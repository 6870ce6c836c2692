"""Two `dd-bench run` processes on one work dir: they share the work instead of doing it twice, and leave one
manifest line per image, one store row per cell, and no temporary or claim file."""

import json
import sqlite3
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_runs_on_one_work_dir_split_the_work(tmp_path):
    # zero-shot SD, both settings: 65 images (2 blocks) shared by the two cells of each run.
    args = [sys.executable, "-m", "datadream_bench", "run", "--method", "zero-shot-sd", "--profile", "tiny",
            "--shots", "2", "--seeds", "0", "--set", "images_per_class=13", "--set", "num_inference_steps=2", "--json", "-w", str(tmp_path)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    statuses = sorted(c["status"] for out, _ in outs for c in json.loads(out)["cells"])
    assert statuses == ["done", "done", "skipped", "skipped"]  # each cell ran in one process only

    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        records = [json.loads(r[0]) for r in db.execute("SELECT record FROM results")]
    assert len(records) == 2
    made = sum(r["generation"]["images"] for r in records)
    assert made == 65, f"{made} images made for a set of 65"
    (manifest,) = tmp_path.glob("generated/zero-shot-sd/*/manifest.jsonl")
    ids = [json.loads(line)["id"] for line in manifest.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 65
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name.endswith(".claim")]
    assert not leftovers
