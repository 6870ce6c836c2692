"""Where each stage's artifacts live in the work directory, keyed by the fingerprint of exactly their inputs."""

from __future__ import annotations

import re
from pathlib import Path

from .. import artifacts
from ..fingerprint import fingerprint


def safe_name(name: str) -> str:
    """A file name for an arbitrary unit or class name ("F/A-18" included): readable part plus a hash of the whole."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:40]
    return f"{readable}-{fingerprint(name, 8)}"


def unit_record(folder: Path, unit: str) -> Path:
    """An adapt unit's record in its set's adapt folder, written last of its files: there, the unit is finished."""
    return (folder / safe_name(unit)).with_suffix(".json")


def write_json_atomic(path: Path, obj) -> None:
    """JSON under a unique temporary name, renamed into place (see artifacts)."""
    artifacts.write_json_atomic(path, obj)


def portable_path(path: str | Path, work_dir: str | Path) -> str:
    """How the work dir records a path: relative to the work dir when it lies inside (the work dir may be copied or
    mounted elsewhere), else absolute (a data root stays where it is); never relative to the current directory."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(work_dir).resolve()).as_posix()
    except ValueError:
        return str(p)


class WorkDir:
    def __init__(self, root: str | Path):
        # Absolute: paths derived from it (the demo dataset's files, artifacts) must not depend on the current
        # directory of whichever process reads them.
        self.root = Path(root).expanduser().resolve()

    @property
    def store(self) -> Path:
        return self.root / "results.sqlite"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def decoded_images(self) -> Path:
        """The classifier's cache of decoded, resized images (keyed by path, size and mtime), shared by all cells."""
        return self.root / "cache" / "decoded"

    def fewshot(self, dataset: str, fp: str) -> Path:
        return self.root / "fewshot" / dataset / f"{fp}.json"

    def adapt(self, method: str, fp: str) -> Path:
        return self.root / "adapt" / method / fp

    def generated(self, method: str, fp: str) -> Path:
        return self.root / "generated" / method / fp

    def classifier(self, fp: str) -> Path:
        return self.root / "classifier" / fp

    def cell_claim(self, cell_key: str) -> Path:
        """Held by the process running the cell, so that another one on this work dir does not run it too."""
        return self.root / "cells" / f"{cell_key}.claim"
