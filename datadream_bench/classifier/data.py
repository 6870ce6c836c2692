"""The classifier's image data path: every image decoded once into a uint8 tensor, batches drawn from memory.

PNG/JPEG decoding happens up front, in threads (PIL releases the GIL while decoding and resizing), into a square
uint8 cache: shorter side resized (bicubic) to the cache size, then centre-cropped. With a cache folder the array
is a memory-mapped .npy file keyed by what it holds, so a second setting of the same cell reuses it. Training
batches are then an index into that tensor, augmented in a background thread one or two batches ahead.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..datasets.images import BadImageError, load_rgb
from ..datasets.manifest import Sample
from ..errors import UsageError
from ..fingerprint import fingerprint


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_square(path: str, size: int) -> np.ndarray:
    """(3, size, size) uint8: shorter side resized to size with bicubic filtering, then the central square."""
    img = load_rgb(path)
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _cache_key(paths: Sequence[str], size: int) -> str:
    """What the cache holds: each file's path, length and modification time, and the size. Cheap to compute."""
    parts = []
    for p in paths:
        st = os.stat(p)
        parts.append([p, st.st_size, st.st_mtime_ns])
    return fingerprint({"paths": parts, "size": size, "v": 1})


def decode_all(paths: Sequence[str], size: int, workers: int = 0, cache_dir: Path | None = None,
               what: str = "image") -> torch.Tensor:
    """(N, 3, size, size) uint8 tensor of the images at paths. A file that does not decode raises UsageError."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UsageError(f"{len(missing)} {what} file(s) missing, e.g. {missing[0]}")
    if not paths:
        return torch.zeros((0, 3, size, size), dtype=torch.uint8)
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        stem = cache_dir / f"images-{size}-{_cache_key(paths, size)}"
        done = stem.with_suffix(".done")
        if done.exists():
            return torch.from_numpy(np.load(stem.with_suffix(".npy"), mmap_mode="r+"))
        tmp = stem.with_name(stem.name + f".tmp-{os.getpid()}.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
    else:
        array = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def fill(i: int) -> None:
        try:
            array[i] = decode_square(paths[i], size)
        except BadImageError as e:
            raise UsageError(f"{what} {e.path} cannot be used: {e.reason}") from None

    with ThreadPoolExecutor(workers or default_workers()) as pool:
        for _ in pool.map(fill, range(len(paths))):
            pass
    if cache_dir is not None:
        array.flush()
        del array
        tmp.replace(stem.with_suffix(".npy"))
        done.touch()
        return torch.from_numpy(np.load(stem.with_suffix(".npy"), mmap_mode="r+"))
    return torch.from_numpy(array)


@dataclass
class TrainSet:
    """Training rows over decoded images: a real shot repeated n times is n rows over one decoded image."""

    images: torch.Tensor  # (M, 3, S, S) uint8, each file once
    index: torch.Tensor  # (N,) row -> image
    labels: torch.Tensor  # (N,) int64
    real: torch.Tensor  # (N,) bool: a real shot (True) or a synthetic image

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.images[self.index[rows]], self.labels[rows], self.real[rows]


def plan_rows(synthetic: Sequence[Sample], real: Sequence[Sample], num_classes: int,
              repeats: Callable[[int, int], int] = lambda shots, synthetic_count: 1,
              ) -> tuple[list[str], list[tuple[int, int, bool]]]:
    """(unique image paths, rows of (image, label, is_real)). Each class's real shots are repeated
    repeats(shots of the class, synthetic images of the class) times; a file is decoded once however often."""
    paths: list[str] = []
    where: dict[str, int] = {}
    rows = []

    def image(path: str) -> int:
        if path not in where:
            where[path] = len(paths)
            paths.append(path)
        return where[path]

    for s in synthetic:
        rows.append((image(s.path), s.label, False))
    syn_count = [0] * num_classes
    for s in synthetic:
        syn_count[s.label] += 1
    real_by_class: list[list[Sample]] = [[] for _ in range(num_classes)]
    for s in real:
        real_by_class[s.label].append(s)
    for label, group in enumerate(real_by_class):
        for _ in range(repeats(len(group), syn_count[label]) if group else 0):
            rows.extend((image(s.path), s.label, True) for s in group)
    return paths, rows


def epoch_order(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)


def batch_indices(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def prefetched(fn: Callable, items: Iterable, depth: int) -> Iterator:
    """fn(item) for each item, computed up to depth items ahead in one background thread; order kept."""
    if depth <= 0:
        yield from (fn(item) for item in items)
        return
    items = iter(items)
    with ThreadPoolExecutor(1) as pool:
        pending = deque(pool.submit(fn, item) for item in islice(items, depth))
        while pending:
            result = pending.popleft().result()
            nxt = next(items, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield result
