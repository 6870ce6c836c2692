"""Where each stage's artifacts live in the work directory, keyed by the fingerprint of exactly their inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..fingerprint import fingerprint


def safe_name(name: str) -> str:
    """A file name for an arbitrary unit or class name ("F/A-18" included): readable part plus a hash of the whole."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:40]
    return f"{readable}-{fingerprint(name, 8)}"


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    tmp.replace(path)


class WorkDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

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
