"""The generated set's manifest: one JSON line per finished image, appended only after its file is in place.

A filtering method also keeps a rejection log beside it (one JSON line per rejected candidate), so that a resumed
run starts each unfinished image at the candidate after its last rejection.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "manifest.jsonl"
REJECTIONS = "rejections.jsonl"


def _records(path: Path):
    if not path.exists():
        return
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # only the line being written when the process died can be torn


def read_manifest(path: Path) -> dict[str, dict]:
    """id -> record for every recorded image whose file exists. A torn last line (crash mid-write) is ignored."""
    root = path.parent
    return {rec["id"]: rec for rec in _records(path) if (root / rec["file"]).exists()}


def read_rejections(path: Path) -> dict[str, dict[int, dict]]:
    """id -> {attempt -> record} of every rejected candidate logged so far."""
    out: dict[str, dict[int, dict]] = {}
    for rec in _records(path):
        out.setdefault(rec["id"], {})[rec["attempt"]] = rec
    return out


class ManifestWriter:
    def __init__(self, path: Path):
        self._f = open(path, "a")

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self._f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def write_atomic(image, path: Path) -> None:
    """Encode to a temporary name and rename: a reader (or a resumed run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
