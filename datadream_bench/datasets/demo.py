"""The demo world: scikit-learn's handwritten digits (shipped inside the package, no download).

Digits 5-9 are the *base* classes the demo backbones were pretrained on (scripts/pretrain_demo.py); digits 0-4 are
the *target* classes of the benchmark task, which neither backbone has seen, as in the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..artifacts import temp_path, write_bytes_atomic
from ..fingerprint import seed_from
from .manifest import DatasetManifest, Sample

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BASE_DIGITS = (5, 6, 7, 8, 9)
TARGET_DIGITS = (0, 1, 2, 3, 4)
SIZE = 32
# Per class: 40% train (few-shot pool), 20% val (model selection), 40% test.
SPLIT_FRACTIONS = (("train", 0.4), ("val", 0.2), ("test", 0.4))
_LAYOUT_VERSION = 1


def class_name(digit: int) -> str:
    return f"digit {NAMES[digit]}"


def digit_images(digits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 white-on-black images and their digit labels, upsampled from the 8x8 originals."""
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.isin(data.target, digits)
    images = []
    for img in data.images[keep]:
        small = Image.fromarray((img * (255 / 16)).round().astype(np.uint8), mode="L")
        images.append(np.asarray(small.resize((SIZE, SIZE), Image.BICUBIC).convert("RGB")))
    return np.stack(images), data.target[keep]


def demo_dataset(root: Path, digits: tuple[int, ...] = TARGET_DIGITS, key: str = "demo-digits") -> DatasetManifest:
    """Write the digits as PNG files under root (once) and return their manifest."""
    root = Path(root)
    marker = root / "layout.json"
    images, targets = digit_images(digits)
    classes = tuple(class_name(d) for d in digits)
    splits: dict[str, list[Sample]] = {name: [] for name, _ in SPLIT_FRACTIONS}
    paths = []
    for label, digit in enumerate(digits):
        idx = np.flatnonzero(targets == digit)
        # A fixed shuffle so that every split holds writers from across the collection.
        idx = idx[np.random.default_rng(seed_from("demo-split", digit)).permutation(len(idx))]
        start = 0
        for i, (name, frac) in enumerate(SPLIT_FRACTIONS):
            stop = len(idx) if i == len(SPLIT_FRACTIONS) - 1 else start + int(round(frac * len(idx)))
            for j in idx[start:stop]:
                path = root / f"class-{label:03d}" / f"{j:04d}.png"
                splits[name].append(Sample(str(path), label))
                paths.append((path, j))
            start = stop
    expected = {"version": _LAYOUT_VERSION, "digits": list(digits), "count": len(paths)}
    if not marker.exists() or json.loads(marker.read_text()) != expected:
        # Unique temporary names and atomic renames: two processes may materialise the same work dir at once.
        for path, j in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(path)
            Image.fromarray(images[j]).save(tmp, format="PNG")
            tmp.replace(path)
        write_bytes_atomic(marker, json.dumps(expected).encode())
    return DatasetManifest(
        key=key,
        classes=classes,
        splits={k: tuple(v) for k, v in splits.items()},
        prompt_word="",
        template="a photo of a {}.",
        source="sklearn-digits",
        protocol="standard",
    )
