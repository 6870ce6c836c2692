"""SQLite results store in the work directory. The leaderboard and `show` only read it."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    cell_key   TEXT PRIMARY KEY,
    method     TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    shots      INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    setting    TEXT NOT NULL,
    classifier TEXT NOT NULL,
    profile    TEXT NOT NULL,
    top1       REAL NOT NULL,
    record     TEXT NOT NULL,
    finished   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_cell ON results (method, dataset, shots, setting, profile);
"""
COLUMNS = ("cell_key", "method", "dataset", "shots", "seed", "setting", "classifier", "profile", "top1", "finished")


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One short-lived connection per call: cells may finish in other processes (an executor's workers).
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.row_factory = sqlite3.Row
        return db

    def has(self, cell_key: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM results WHERE cell_key = ?", (cell_key,)).fetchone() is not None

    def add(self, spec: dict, cell_key: str, top1: float, record: dict) -> None:
        row = {
            "cell_key": cell_key, **{k: spec[k] for k in COLUMNS[1:8]}, "top1": float(top1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "record": json.dumps(record, sort_keys=True, default=str),
        }
        names = ", ".join(row)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO results ({names}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))

    def rows(self, with_record: bool = False, **where) -> list[dict]:
        """Rows matching column = value filters (None values are ignored); with_record: each with its parsed record
        (the leaderboard needs the config to keep different experiments apart)."""
        filters = {k: v for k, v in where.items() if v is not None}
        bad = set(filters) - set(COLUMNS)
        if bad:
            raise ValueError(f"cannot filter results on {sorted(bad)}")
        clause = " AND ".join(f"{k} = ?" for k in filters) or "1"
        columns = ", ".join(COLUMNS) + (", record" if with_record else "")
        with self._connect() as db:
            cur = db.execute(f"SELECT {columns} FROM results WHERE {clause} "
                             f"ORDER BY dataset, method, setting, shots, seed", tuple(filters.values()))
            out = [dict(r) for r in cur]
        for r in out:
            if with_record:
                r["record"] = json.loads(r["record"])
        return out

    def record(self, key_prefix: str) -> dict:
        """The full record of the one cell whose key starts with key_prefix."""
        with self._connect() as db:
            found = db.execute("SELECT cell_key, record FROM results WHERE cell_key LIKE ?",
                               (key_prefix + "%",)).fetchall()
        if len(found) != 1:
            from ..errors import UsageError

            what = "no cell" if not found else f"{len(found)} cells"
            raise UsageError(f"{what} in {self.path} with a key starting {key_prefix!r}; "
                             f"`dd-bench leaderboard --format json --cells` lists the keys")
        return json.loads(found[0]["record"])
