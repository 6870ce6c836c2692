"""The .mat metadata of Stanford Cars and Flowers-102, read with scipy (never through a downloader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError


def load(path: str | Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UsageError(f"reading {path} needs scipy (pip install scipy)") from None
    try:
        return loadmat(str(path), squeeze_me=True)
    except (OSError, ValueError, NotImplementedError) as e:
        raise UsageError(f"{path} is not a readable .mat file: {type(e).__name__}: {e}") from None


def field(path: str | Path, name: str) -> np.ndarray:
    data = load(path)
    if name not in data:
        found = ", ".join(k for k in data if not k.startswith("__"))
        raise UsageError(f"{path} has no {name!r} entry (found: {found})")
    return np.atleast_1d(data[name])


def cars_class_names(path: str | Path) -> list[str]:
    """devkit/cars_meta.mat: the 196 names in label order (label = index + 1 in the annotations)."""
    return [str(x) for x in field(path, "class_names")]


def cars_annotations(path: str | Path) -> list[tuple[str, int]]:
    """cars_{train,test}_annos(_withlabels).mat: (file name, 1-based class)."""
    ann = field(path, "annotations")
    if ann.dtype.names is None or not {"fname", "class"} <= set(ann.dtype.names):
        raise UsageError(f"{path}: annotations carry no 'fname' and 'class' fields (a test file without labels?)")
    return [(str(a["fname"]), int(a["class"])) for a in ann]
