"""SQLite results store in the work directory. The leaderboard and `show` only read it.

A store that is there but unreadable (emptied, cut short, overwritten) is refused with a way to recover, never
silently replaced by a new empty one: its rows are the record of finished work. A new store appears whole (made
under a temporary name, then linked into place), so an empty file at the store's path always means damage.
Concurrent writers (two runs on one work dir) wait on SQLite's lock (a busy timeout) and never lose a row.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .. import faults
from ..errors import StoreCorrupt

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
    finished   TEXT NOT NULL,
    digest     TEXT
);
CREATE INDEX IF NOT EXISTS results_by_cell ON results (method, dataset, shots, setting, profile);
"""
COLUMNS = ("cell_key", "method", "dataset", "shots", "seed", "setting", "classifier", "profile", "top1", "finished")
# What a row's digest covers: every value in it. SQLite checks its pages, not what they hold; the digest finds a row
# whose bytes changed on disk.
DIGESTED = (*COLUMNS, "record")


HEADER = b"SQLite format 3\x00"
# Seconds a writer waits for another process's write to finish (rows are written in milliseconds).
BUSY_TIMEOUT = 60


def check_store(path: str | Path) -> None:
    """Raise StoreCorrupt when a file is at `path` but is not a readable results store. No file: fine (made later)."""
    path = Path(path)
    if not path.exists():
        return
    problem = _problem(path)
    if problem:
        raise StoreCorrupt(
            f"{path} is not a usable results store: {problem}. Nothing was written to it. To recover, move it aside "
            f"(mv '{path}' '{path}.broken') and run the same `dd-bench run` again: finished cells are rebuilt from "
            f"the artifacts in {path.parent} (only their evaluation reruns); or put back a copy from a backup")


def _problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(HEADER))
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not head:
        return "the file is empty (0 bytes)"
    if head != HEADER:
        return "the file does not start with SQLite's header"
    try:
        # A read-write connection, so that SQLite rolls back a write a crash left half done (a hot journal).
        with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT)) as db:
            found = [row[0] for row in db.execute("PRAGMA quick_check")]
            if found != ["ok"]:
                return f"SQLite's check found damage ({'; '.join(found[:3])})"
            cut = _cut_short(path)
            if cut:
                return cut
            tables = sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
            if "results" not in tables:
                return f"it has no results table (tables: {', '.join(tables) or 'none'})"
            columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
            missing = sorted(set(DIGESTED) - columns)
            if missing:
                return f"its results table lacks the column(s) {', '.join(missing)}"
            if "digest" in columns:
                names = ", ".join(DIGESTED)
                for row in db.execute(f"SELECT {names}, digest FROM results WHERE digest IS NOT NULL"):
                    if row_digest(row[:-1]) != row[-1]:
                        return f"the row of cell {row[0]!r} does not match the digest written with it"
    except sqlite3.DatabaseError as e:
        return f"SQLite cannot read it ({e})"
    return None


def _cut_short(path: Path) -> str | None:
    """SQLite reads a file cut inside its last page without complaint; its header says how long the file must be.
    Read after SQLite has opened the file, so a write that a crash left half done is rolled back first."""
    with open(path, "rb") as f:
        head = f.read(100)
    size = path.stat().st_size
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The header's page count holds only while its change counter equals its version-valid-for number.
    if pages and head[24:28] == head[92:96] and size != pages * page_size:
        return f"the file is {size} bytes but its header says {pages} pages of {page_size} ({pages * page_size} bytes)"
    return None


def row_digest(values) -> str:
    """sha256 of a row's values (in DIGESTED order)."""
    return hashlib.sha256(json.dumps(list(values)).encode()).hexdigest()


def _create(path: Path) -> None:
    """Make an empty store under a unique temporary name and link it into place; if another process made one
    first, theirs is kept."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with closing(sqlite3.connect(tmp)) as db:
            db.executescript(SCHEMA)
            db.commit()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            _create(self.path)
        check_store(self.path)
        with self._connect() as db:  # a store from before rows had digests gets the column; its rows stay unchecked
            if "digest" not in {row[1] for row in db.execute("PRAGMA table_info(results)")}:
                db.execute("ALTER TABLE results ADD COLUMN digest TEXT")

    @contextmanager
    def _connect(self):
        # One short-lived connection per call: cells may finish in other processes (an executor's workers, a
        # second run on the same work dir).
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)) as db:
            db.row_factory = sqlite3.Row
            with db:  # commits on success, rolls back on an error
                yield db

    def has(self, cell_key: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM results WHERE cell_key = ?", (cell_key,)).fetchone() is not None

    def add(self, spec: dict, cell_key: str, top1: float, record: dict, finished: str | None = None) -> None:
        """finished: when the cell finished (default: now; a merged row keeps its own)."""
        row = {
            "cell_key": cell_key, **{k: spec[k] for k in COLUMNS[1:8]}, "top1": float(top1),
            "finished": finished or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "record": json.dumps(record, sort_keys=True, default=str),
        }
        row["digest"] = row_digest(row[name] for name in DIGESTED)
        names = ", ".join(row)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO results ({names}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
            faults.point("store.write")
        faults.point("store.written")

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
