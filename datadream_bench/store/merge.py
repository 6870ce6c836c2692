"""Results from many machines: bring finished cells from other stores into this one, and export them.

A cell's key says what its result depends on, so rows of one key from two stores should agree. Merging keeps a
row once when both say the same; when they disagree, the row here stays as it is and the disagreement is reported
(two runs of one cell that computed different things: a nondeterminism or a tampered store worth a look).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .results import ResultsStore

# What a cell computed: two runs of one cell (same key) must agree on these. The rest of a record is about the run
# (timings, machine, paths, versions, which seeds the command asked for) and may differ between two machines.
RESULT = ("metrics", "artifacts")


@dataclass
class Conflict:
    cell_key: str
    source: Path
    fields: list[str]  # the record's top-level fields that differ
    label: str


@dataclass
class MergeReport:
    added: list[str] = field(default_factory=list)  # keys brought in
    identical: list[str] = field(default_factory=list)  # same record here already: kept once
    same_result: list[str] = field(default_factory=list)  # another run of the cell with the same result: kept once
    conflicts: list[Conflict] = field(default_factory=list)  # a different result: reported, not overwritten


def store_path(source: str | Path) -> Path:
    """The results store of a work dir, or the store file itself."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / "results.sqlite"
    if not path.is_file():
        raise UsageError(f"no results store at {path}: give a work dir that holds results.sqlite, or the file")
    return path


def read_rows(path: Path) -> list[dict]:
    """Every row of a store, record included, read without writing to it."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM results ORDER BY cell_key")]
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path} is not a readable dd-bench results store ({e})") from None
    for r in rows:
        r["record"] = json.loads(r["record"])
    return rows


def result_of(record: dict) -> dict:
    return {k: record.get(k) for k in RESULT}


def merge(target: ResultsStore, sources: list[str | Path]) -> MergeReport:
    report = MergeReport()
    paths = [store_path(s) for s in sources]
    for path in paths:
        if path.resolve() == target.path.resolve():
            raise UsageError(f"{path} is the store being merged into")
    here = {r["cell_key"]: r for r in read_rows(target.path)} if target.path.exists() else {}
    for path in paths:
        for row in read_rows(path):
            key, record = row["cell_key"], row["record"]
            mine = here.get(key)
            if mine is None:
                target.add(record["spec"], key, row["top1"], record, finished=row["finished"])
                here[key] = row
                report.added.append(key)
            elif mine["record"] == record:
                report.identical.append(key)
            elif result_of(mine["record"]) == result_of(record) and mine["top1"] == row["top1"]:
                report.same_result.append(key)
            else:
                differ = [k for k in RESULT if record.get(k) != mine["record"].get(k)]
                label = "/".join(str(row[c]) for c in ("method", "dataset", "shots", "seed", "setting"))
                report.conflicts.append(Conflict(key, path, differ or ["top1"], label))
    return report


def export_rows(store: ResultsStore) -> list[dict]:
    """One row per cell: its key, the store's columns, its metrics and full spec."""
    out = []
    for r in read_rows(store.path):
        record = r.pop("record")
        out.append({"key": r.pop("cell_key"), **r, "metrics": record.get("metrics", {}),
                    "spec": record.get("spec", {})})
    return out
