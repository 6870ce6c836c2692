"""Stable short hashes of JSON-able things and of files: the keys of every artifact."""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}")


def fingerprint(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seed_from(*parts: Any) -> int:
    """A 63-bit seed derived from its parts only (never from process state)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def code_fingerprint(obj: Any) -> str:
    """A hash of the source of the plugin code that defines obj's class: the names and bytes of its .py files.

    A plugin package's whole package (dd_bench_disef/); a single-module plugin's file; for a class the core ships,
    the subpackage it lives in (datadream_bench/classifier/, datadream_bench/builtins/). An edit to any of these
    files changes the hash, whatever the version number says."""
    module = sys.modules[type(obj).__module__]
    top = module.__name__.partition(".")[0]
    owner = sys.modules[module.__package__ or module.__name__] if top == __name__.partition(".")[0] else \
        sys.modules[top]
    folders = getattr(owner, "__path__", None)
    return _source_fingerprint(str(Path(list(folders)[0]) if folders else Path(owner.__file__)))


@lru_cache(maxsize=None)
def _source_fingerprint(root: str) -> str:
    path = Path(root)
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        name = f.relative_to(path).as_posix() if path.is_dir() else f.name
        h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]
