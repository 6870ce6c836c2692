"""What is already known about a dataset's files: their content digest and whether they decode, kept in the work
directory so that a second run over a large dataset (ImageNet: 1.3 M files) does not read every file again.

An entry holds only while the file keeps its size and modification time; any change and the file is read again.
Only good news is kept (a digest, a clean decode): a bad file is checked, and reported, on every run.
"""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path     TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest   TEXT,
    decodes  INTEGER NOT NULL DEFAULT 0
)
"""


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class FileCache:
    """A store of per-file facts at `path` (SQLite); with path None it remembers nothing (every file is read)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def _known(self, paths: list[str]) -> dict[str, tuple]:
        """path -> (digest, decodes) for entries whose size and mtime still match the file."""
        if self.path is None or not paths:
            return {}
        stamps = {p: _stamp(p) for p in paths}
        out = {}
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE wanted (path TEXT PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((p,) for p in paths))
            rows = db.execute("SELECT f.path, f.size, f.mtime_ns, f.digest, f.decodes FROM files f "
                              "JOIN wanted w ON w.path = f.path")
            for path, size, mtime_ns, digest, decodes in rows:
                if stamps[path] == (size, mtime_ns):
                    out[path] = (digest, bool(decodes))
        return out

    def digests(self, paths: list[str], compute: Callable[[str], str], workers: int,
                progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[dict[str, str], int]:
        """(path -> digest for every path, how many files had to be read)."""
        known = {p: d for p, (d, _) in self._known(paths).items() if d}
        todo = [p for p in paths if p not in known]
        fresh = {}
        with ThreadPoolExecutor(workers) as pool:
            for i, (path, digest) in enumerate(zip(todo, pool.map(compute, todo))):
                fresh[path] = digest
                if i % 256 == 0:
                    progress(len(known) + i, len(paths))
        progress(len(paths), len(paths))
        self._put(((p, d) for p, d in fresh.items()), "digest")
        return {**known, **fresh}, len(todo)

    def known_to_decode(self, paths: list[str]) -> set[str]:
        return {p for p, (_, decodes) in self._known(paths).items() if decodes}

    def mark_decoded(self, paths: list[str]) -> None:
        self._put(((p, 1) for p in paths), "decodes")

    def _put(self, values, column: str) -> None:
        if self.path is None:
            return
        rows = [(p, *_stamp(p), v) for p, v in values]
        with self._connect() as db:
            # A file with a new size or mtime forgets what was known of it before.
            db.executemany("DELETE FROM files WHERE path = ? AND (size != ? OR mtime_ns != ?)",
                           [(p, size, mtime) for p, size, mtime, _ in rows])
            db.executemany("INSERT OR IGNORE INTO files (path, size, mtime_ns) VALUES (?, ?, ?)",
                           [(p, size, mtime) for p, size, mtime, _ in rows])
            db.executemany(f"UPDATE files SET {column} = ? WHERE path = ?", [(v, p) for p, _, _, v in rows])
