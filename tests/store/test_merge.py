"""Results from many machines: two work dirs that each ran half of the seeds, merged, give the leaderboard of one
work dir that ran them all; a conflicting row is reported and never overwritten; export has one row per cell."""

import csv
import io
import json
import sqlite3
import subprocess
import sys

import pytest

from datadream_bench import leaderboard
from datadream_bench.plugins import load_registry
from datadream_bench.runner import run_grid
from datadream_bench.store import ResultsStore
from datadream_bench.store.merge import merge
from datadream_bench.testing import tiny_cells

METHODS = ["real-only", "zero-shot-clip"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "datadream_bench", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    registry = load_registry()
    out = {}
    for name, seeds in (("first", [0]), ("second", [1]), ("all", [0, 1])):
        work = tmp_path_factory.mktemp(name)
        outcome = run_grid(tiny_cells(METHODS, work, registry, seeds=seeds), work)
        assert not outcome.failed, [o.error for o in outcome.failed]
        out[name] = work
    return out


def board(work):
    return leaderboard.FORMATS["json"](leaderboard.build(ResultsStore(work / "results.sqlite").rows()))


def test_two_halves_merged_give_the_whole_leaderboard(runs, tmp_path):
    target = tmp_path / "merged"
    result = cli("merge", str(runs["first"]), str(runs["second"] / "results.sqlite"), "-w", str(target), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["added"]) == 4 and not report["conflicts"]
    assert board(target) == board(runs["all"])
    # merged again: every row is already here, kept once
    again = merge(ResultsStore(target / "results.sqlite"), [runs["first"], runs["second"]])
    assert not again.added and len(again.identical) == 4 and not again.conflicts
    assert len(ResultsStore(target / "results.sqlite").rows()) == 4
    # the same cells run elsewhere (other timings, same result) are kept once too
    other = merge(ResultsStore(target / "results.sqlite"), [runs["all"]])
    assert not other.added and len(other.same_result) == 4 and not other.conflicts


def test_a_conflicting_row_is_reported_not_overwritten(runs, tmp_path):
    target = tmp_path / "merged"
    assert cli("merge", str(runs["first"]), "-w", str(target)).returncode == 0
    tampered = tmp_path / "tampered.sqlite"
    tampered.write_bytes((runs["second"] / "results.sqlite").read_bytes())
    with sqlite3.connect(runs["first"] / "results.sqlite") as db:
        key, record = db.execute("SELECT cell_key, record FROM results WHERE method = 'real-only'").fetchone()
    changed = json.loads(record)
    changed["metrics"]["top1"] += 10.0
    # the second half's store, plus a row of the first half's key that says something else
    ResultsStore(tampered).add(changed["spec"], key, changed["metrics"]["top1"], changed)
    before = ResultsStore(target / "results.sqlite").record(key)
    result = cli("merge", str(tampered), "-w", str(target))
    assert result.returncode == 1
    assert f"conflict {key[:10]} real-only/" in result.stderr and "metrics differ" in result.stderr
    assert ResultsStore(target / "results.sqlite").record(key) == before  # not overwritten
    assert len(ResultsStore(target / "results.sqlite").rows()) == 4  # the second half's rows came in


def test_results_export_one_row_per_cell_with_its_key(runs):
    store = ResultsStore(runs["all"] / "results.sqlite")
    keys = sorted(r["cell_key"] for r in store.rows())
    lines = cli("results", "-w", str(runs["all"]), "--format", "jsonl").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["key"] for r in rows) == keys and len(keys) == 4
    assert all(r["metrics"]["top1"] == r["top1"] and r["spec"]["seed"] == r["seed"] for r in rows)
    table = list(csv.DictReader(io.StringIO(cli("results", "-w", str(runs["all"]), "--format", "csv").stdout)))
    assert sorted(r["key"] for r in table) == keys
    assert {float(r["top1"]) for r in table} == {r["top1"] for r in rows}
    assert cli("results", "-w", str(runs["all"] / "nope")).returncode == 2
