"""The cells the runs asked for, beside the results store: the grid the leaderboard marks missing seeds against.

A run records every cell it plans before the first one starts, finished or not; a cell that is planned and has no
result is missing (failed, interrupted, or its row deleted). The record kept is what the leaderboard needs to place
the cell in its experiment: the spec and the provenance's versions and dataset options.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS planned (
    cell_key   TEXT PRIMARY KEY,
    method     TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    shots      INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    setting    TEXT NOT NULL,
    classifier TEXT NOT NULL,
    profile    TEXT NOT NULL,
    record     TEXT NOT NULL,
    planned    TEXT NOT NULL
);
"""
COLUMNS = ("cell_key", "method", "dataset", "shots", "seed", "setting", "classifier", "profile")
DATA_OPTIONS = ("protocol", "names")  # the dataset options that make another experiment (see leaderboard/board.py)


def plan_record(spec: dict, provenance: dict) -> dict:
    data = provenance.get("dataset") or {}
    return {"spec": spec, "provenance": {**{k: v for k, v in provenance.items() if k != "dataset"},
                                         "dataset": {k: data[k] for k in DATA_OPTIONS if k in data}}}


class PlannedCells:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.row_factory = sqlite3.Row
        return db

    def add(self, cells: list[tuple[str, dict, dict]]) -> None:
        """cells: (cell key, spec as JSON-able dict, provenance)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [(key, *(spec[c] for c in COLUMNS[1:]), json.dumps(plan_record(spec, prov), sort_keys=True,
                                                                   default=str), now)
                for key, spec, prov in cells]
        with self._connect() as db:
            db.executemany(f"INSERT OR REPLACE INTO planned ({', '.join(COLUMNS)}, record, planned) "
                           f"VALUES ({', '.join('?' * (len(COLUMNS) + 2))})", rows)

    def rows(self, **where) -> list[dict]:
        filters = {k: v for k, v in where.items() if v is not None}
        bad = set(filters) - set(COLUMNS)
        if bad:
            raise ValueError(f"cannot filter planned cells on {sorted(bad)}")
        clause = " AND ".join(f"{k} = ?" for k in filters) or "1"
        with self._connect() as db:
            cur = db.execute(f"SELECT {', '.join(COLUMNS)}, record FROM planned WHERE {clause}",
                             tuple(filters.values()))
            out = [dict(r) for r in cur]
        for r in out:
            r["record"] = json.loads(r["record"])
        return out
