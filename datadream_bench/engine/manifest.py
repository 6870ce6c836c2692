"""The generated set's manifest: one JSON line per finished image, appended only after its file is in place."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_manifest(path: Path) -> dict[str, dict]:
    """id -> record for every recorded image whose file exists. A torn last line (crash mid-write) is ignored."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    root = path.parent
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # only the line being written when the process died can be torn
            if (root / rec["file"]).exists():
                done[rec["id"]] = rec
    return done


class ManifestWriter:
    def __init__(self, path: Path):
        self._f = open(path, "a")

    def append(self, records: list[dict]) -> None:
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
