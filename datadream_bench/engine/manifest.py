"""The generated set's manifest: one JSON line per finished image, appended only after its file is in place.

Each line records the image file's size and SHA-256; an image is counted as finished only while its file still
matches them, so a truncated or altered PNG is reported with its path and made again, never trained on.

A filtering method also keeps a rejection log beside it (one JSON line per rejected candidate), so that a resumed
run starts each unfinished image at the candidate after its last rejection.

Appending is safe against a crash mid-line: a writer cuts a torn last line before it appends, so the next record
always starts on a line of its own.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

from .. import faults
from ..artifacts import check_file, write_bytes_atomic, write_with

log = logging.getLogger("dd_bench")

MANIFEST = "manifest.jsonl"
REJECTIONS = "rejections.jsonl"


def records(path: Path):
    """Every parseable line of a JSON-lines file, in order. Only a line cut by a crash can fail to parse."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(rec, dict):
                yield rec


def verify_record(root: Path, rec: dict, cache: dict | None = None) -> str | None:
    """None if the record's image file matches its recorded size and digest, else the problem.

    cache maps (file, size, mtime_ns, sha256) to a verdict already reached, so that a set read several times in one
    process hashes each unchanged file once."""
    path = root / rec["file"]
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    key = (str(path), st.st_size, st.st_mtime_ns, rec.get("sha256"))
    if cache is not None and key in cache:
        return cache[key]
    problem = check_file(path, rec)
    if cache is not None:
        cache[key] = problem
    return problem


def read_manifest(path: Path, cache: dict | None = None, report: list | None = None, root: Path | None = None,
                  quiet: set | None = None) -> dict[str, dict]:
    """id -> record for every recorded image whose file matches its recorded size and digest. A torn line (crash
    mid-write) is ignored; a bad file is logged with its path (and appended to `report`; not logged again when it
    is in `quiet`) and left out, to be made again. File names are relative to root (default: the manifest's
    folder)."""
    root = path.parent if root is None else root
    out: dict[str, dict] = {}
    bad: dict[str, tuple[Path, str]] = {}
    for rec in records(path):
        if "id" not in rec or "file" not in rec:
            continue
        problem = verify_record(root, rec, cache)
        if problem is None:
            out[rec["id"]] = rec
            bad.pop(rec["id"], None)
        elif rec["id"] not in out:
            bad[rec["id"]] = (root / rec["file"], problem)
    for image_id, (file, problem) in bad.items():
        if image_id not in out:
            line = f"{file}: {problem}"
            if quiet is None or line not in quiet:
                log.warning("generated image %s is not usable (%s): it will be made again", file, problem)
            if report is not None:
                report.append(line)
    return out


def read_rejections(path: Path) -> dict[str, dict[int, dict]]:
    """id -> {attempt -> record} of every rejected candidate logged so far."""
    out: dict[str, dict[int, dict]] = {}
    for rec in records(path):
        if "id" in rec and "attempt" in rec:
            out.setdefault(rec["id"], {})[rec["attempt"]] = rec
    return out


def cut_torn_tail(path: Path) -> bool:
    """Drop a last line that has no newline (the process writing it died); True if one was cut."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return False
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return False
            end = size
            while end > 0:  # back to the last newline, in chunks
                start = max(0, end - 65536)
                f.seek(start)
                chunk = f.read(end - start)
                i = chunk.rfind(b"\n")
                if i >= 0:
                    end = start + i + 1
                    break
                end = start
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
            return True
    except FileNotFoundError:
        return False


class ManifestWriter:
    """Appends JSON lines; one writer per file at a time (the runner's claims see to that)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        self._f = open(path, "a")

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self._f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def write_lines_atomic(path: Path, rows: list[dict]) -> None:
    """A whole JSON-lines file at once (a merged manifest): readers see the old file or the new one."""
    write_bytes_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode(), sync=True)


def write_atomic(image, path: Path) -> dict:
    """Encode to a unique temporary name and rename: a reader (or a resumed run) never sees half a file, and two
    writers never share a temporary file. Returns the file's size and SHA-256, recorded in the manifest."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        faults.point("generate.write")  # the temporary file is whole, not yet renamed into place

    return write_with(path, write)
