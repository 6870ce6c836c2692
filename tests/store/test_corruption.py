"""A damaged results store is refused, named, and left as it is (never replaced by an empty one); concurrent writers
and a writer killed mid-write never damage it or lose a row."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datadream_bench.cli.main import app
from datadream_bench.errors import StoreCorrupt
from datadream_bench.store import ResultsStore
from datadream_bench.store.results import check_store

SPEC = dict(method="m", dataset="d", shots=4, seed=0, setting="synthetic", classifier="c", profile="demo")
PAGE = 4096


def fill(path: Path, rows: int = 60) -> None:
    store = ResultsStore(path)
    for i in range(rows):
        store.add({**SPEC, "seed": i}, f"key{i:04d}", 50.0 + i, {"metrics": {"top1": 50.0 + i}, "pad": "x" * 3000})


def flip(offset: int, count: int = 8):
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        offset_ = offset if offset >= 0 else len(data) + offset
        for i in range(offset_, offset_ + count):
            data[i] ^= 0x01
        path.write_bytes(bytes(data))
    return damage


def cut(size):
    return lambda path: os.truncate(path, size(path.stat().st_size) if callable(size) else size)


CORRUPTIONS = {
    "emptied (0 bytes)": cut(0),
    "cut inside the header": cut(50),
    "only the first page left": cut(PAGE),
    "cut in half": cut(lambda n: n // 2),
    "cut at a page boundary": cut(lambda n: n // 2 // PAGE * PAGE),
    "last page missing": cut(lambda n: n - PAGE),
    "one byte short": cut(lambda n: n - 1),
    "header overwritten": flip(0, 16),
    "page size field damaged": flip(16, 2),
    "a b-tree page header damaged": flip(PAGE, 8),
    "the last page's header damaged": flip(-PAGE, 8),
    "bytes of a row changed": flip(-100, 4),
    "second half zeroed": lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2] + bytes(p.stat().st_size
                                                                                              - p.stat().st_size // 2)),
    "a text file in its place": lambda p: p.write_text("results: none\n"),
    "another SQLite database": lambda p: (p.unlink(), sqlite3.connect(p).execute("CREATE TABLE t (x)").connection
                                          .commit()),
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "results.sqlite"
    fill(path)
    check_store(path)
    return path


@pytest.mark.parametrize("damage", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_damaged_store_is_refused_and_left_untouched(damage, healthy, tmp_path):
    path = tmp_path / "results.sqlite"
    shutil.copy(healthy, path)
    CORRUPTIONS[damage](path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreCorrupt, match="not a usable results store") as caught:
        ResultsStore(path)
    message = str(caught.value)
    assert str(path) in message and "mv " in message and "\n" not in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # nothing was written, nothing recreated


def test_every_command_refuses_a_damaged_store_with_one_line(healthy, tmp_path):
    path = tmp_path / "results.sqlite"
    shutil.copy(healthy, path)
    os.truncate(path, 0)
    runner = CliRunner()
    for args in (["run", "-m", "zero-shot-sd", "--profile", "tiny", "--seeds", "0"], ["leaderboard"], ["results"],
                 ["show", "key0001"]):
        result = runner.invoke(app, [*args, "-w", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output, result.exception)
        errors = [line for line in result.output.splitlines() if line.startswith("error")]
        assert len(errors) == 1 and str(path) in errors[0] and "empty" in errors[0], result.output
        assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]  # the run stopped before any work


def test_a_store_from_before_row_digests_is_read_and_upgraded(tmp_path):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE results (cell_key TEXT PRIMARY KEY, method TEXT NOT NULL, dataset TEXT NOT NULL, "
                   "shots INTEGER NOT NULL, seed INTEGER NOT NULL, setting TEXT NOT NULL, classifier TEXT NOT NULL, "
                   "profile TEXT NOT NULL, top1 REAL NOT NULL, record TEXT NOT NULL, finished TEXT NOT NULL)")
        db.execute("INSERT INTO results VALUES ('old', 'm', 'd', 4, 0, 'synthetic', 'c', 'demo', 1.5, '{}', 'then')")
    store = ResultsStore(path)
    store.add(SPEC, "new", 2.0, {})
    assert [r["cell_key"] for r in store.rows()] == ["old", "new"]
    check_store(path)


WRITER = """
import sys
from datadream_bench.store import ResultsStore
store = ResultsStore(sys.argv[1])
spec = dict(method="m", dataset="d", shots=4, seed=0, setting="synthetic", classifier="c", profile="demo")
print("ready", flush=True)
for i in range(int(sys.argv[3])):
    store.add({**spec, "seed": i}, f"{sys.argv[2]}-{i:05d}", float(i), {"i": i, "pad": "x" * 2000})
"""


def test_two_processes_writing_at_once_lose_no_row(tmp_path):
    path = tmp_path / "results.sqlite"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"], stdout=subprocess.PIPE,
                                text=True) for name in ("a", "b")]
    store = None
    while any(w.poll() is None for w in writers):  # a reader at the same time
        if path.exists():
            store = store or ResultsStore(path)
            store.rows()
        time.sleep(0.05)
    assert [w.returncode for w in writers] == [0, 0]
    rows = ResultsStore(path).rows()
    assert len(rows) == 300 and len({r["cell_key"] for r in rows}) == 300
    check_store(path)


def test_a_writer_killed_mid_write_leaves_a_whole_store(tmp_path):
    path = tmp_path / "results.sqlite"
    for round_ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"r{round_}", "100000"],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.2 * round_)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        check_store(path)  # SQLite's journal undid the write in flight; every row present is whole
        rows = ResultsStore(path).rows()
        assert rows and all(r["top1"] == int(r["cell_key"].rsplit("-", 1)[1]) for r in rows)
