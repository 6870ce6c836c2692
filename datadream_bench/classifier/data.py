"""The classifier's image data path: images decoded once (in threads), batches drawn from the decoded set.

Training images keep their whole frame and aspect ratio: the shorter side is brought down to the cache size (never
up) and nothing is cropped, so the augmentation crops from the whole image, as the reference crops from the file.
Evaluation images are the test view: shorter side resized to the CLIP size, central square. PIL releases the GIL
while decoding and resizing, so threads decode in parallel.

A decoded set lives in memory (no cache folder), in the work dir's cache (classifier.cache, checked on every
reuse), or, when it would not fit the cache's bound or the disk, nowhere: its images are then decoded as batches
ask for them. Training batches are augmented in a background thread one or two batches ahead.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..datasets.images import BadImageError, check_extension, load_rgb
from ..datasets.manifest import Sample
from ..errors import UsageError
from ..fingerprint import fingerprint
from .cache import Cache, image_bytes

# Orientations (EXIF tag 0x0112) that turn the image a quarter: its width and height swap once applied.
_QUARTER_TURNS = {5, 6, 7, 8}


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def full_size(w: int, h: int, cap: int) -> tuple[int, int]:
    """(w, h) with the shorter side brought down to cap (never up), the aspect ratio kept."""
    if min(w, h) <= cap:
        return w, h
    scale = cap / min(w, h)
    return (cap, max(cap, round(h * scale))) if w <= h else (max(cap, round(w * scale)), cap)


def decode_full(path: str, cap: int) -> np.ndarray:
    """(3, h, w) uint8: the whole image, shorter side at most cap (bicubic when it is reduced)."""
    img = load_rgb(path)
    size = full_size(*img.size, cap)
    if size != img.size:
        img = img.resize(size, Image.BICUBIC)
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)  # writable


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
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)  # writable


def header_size(path: str) -> tuple[int, int]:
    """(w, h) as decoding will give it (EXIF orientation applied), read from the header without decoding."""
    check_extension(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            return (h, w) if img.getexif().get(0x0112) in _QUARTER_TURNS else (w, h)
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from None


@dataclass
class Images:
    """A decoded set: the (h, w) of each image and a way to get any of them as uint8 (3, h, w) arrays."""

    shapes: list[tuple[int, int]]
    _fetch: Callable[[Sequence[int]], list[np.ndarray]]
    info: dict = field(default_factory=dict)  # where it lives ("memory" | "disk" | "decoded per batch"), bytes, ...

    def __len__(self) -> int:
        return len(self.shapes)

    def get(self, indices: Sequence[int]) -> list[torch.Tensor]:
        return [torch.from_numpy(a) for a in self._fetch(list(indices))]

    def stack(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """(B, 3, h, w) of images that share one size (an evaluation set)."""
        indices = range(len(self)) if indices is None else indices
        arrays = self._fetch(list(indices))
        if not arrays:
            return torch.zeros((0, 3, 0, 0), dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrays))

    @staticmethod
    def concat(parts: Sequence[Images]) -> Images:
        starts = np.cumsum([0] + [len(p) for p in parts])

        def fetch(indices: Sequence[int]) -> list[np.ndarray]:
            out: list[np.ndarray | None] = [None] * len(indices)
            for k, part in enumerate(parts):
                mine = [(j, i - starts[k]) for j, i in enumerate(indices) if starts[k] <= i < starts[k + 1]]
                if mine:
                    for (j, _), array in zip(mine, part._fetch([i for _, i in mine])):
                        out[j] = array
            return out

        return Images([s for p in parts for s in p.shapes], fetch, {"parts": [p.info for p in parts]})


def _run(pool: ThreadPoolExecutor, fn: Callable, items: Sequence, what: str, chunk: int = 256) -> Iterator:
    """pool.map in chunks (results wait in memory one chunk at most), a bad image a usage error naming it."""
    try:
        for start in range(0, len(items), chunk):
            yield from pool.map(fn, items[start:start + chunk])
    except BadImageError as e:
        raise UsageError(f"{what} {e.path} cannot be used: {e.reason}") from None


def _cache_key(paths: Sequence[str], size: int, square: bool) -> str:
    """What an entry holds: each file's path, length and modification time, the size and the view. Cheap."""
    parts = []
    for p in paths:
        st = os.stat(p)
        parts.append([p, st.st_size, st.st_mtime_ns])
    return fingerprint({"paths": parts, "size": size, "square": square, "v": 2})


def decode_images(paths: Sequence[str], size: int, *, square: bool, workers: int = 0, cache_dir: Path | None = None,
                  limit: int | None = None, what: str = "image") -> Images:
    """The images at paths, decoded: square=True the test view (size x size), else the whole image with its shorter
    side at most size. A file that is missing or does not decode is a UsageError naming it.

    cache_dir None: in memory. Otherwise an entry of the cache in cache_dir (at most `limit` bytes in all), or, when
    the set cannot fit there, images decoded as they are asked for."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UsageError(f"{len(missing)} {what} file(s) missing, e.g. {missing[0]}")
    workers = workers or default_workers()
    decode = (lambda p: decode_square(p, size)) if square else (lambda p: decode_full(p, size))
    view = f"{'square' if square else 'full'} {size}"
    if not paths:
        return Images([], lambda idx: [], {"where": "memory", "view": view, "bytes": 0})
    if cache_dir is None:
        with ThreadPoolExecutor(workers) as pool:
            arrays = list(_run(pool, decode, paths, what))
        return Images([a.shape[1:] for a in arrays], lambda idx: [arrays[i] for i in idx],
                      {"where": "memory", "view": view, "bytes": sum(a.nbytes for a in arrays)})
    cache = Cache(Path(cache_dir), limit)
    name = f"images-{_cache_key(paths, size, square)}"
    entry = cache.open(name)
    note = "reused" if entry is not None else (cache.problem or "")
    if entry is None:
        with ThreadPoolExecutor(workers) as pool:
            if square:
                shapes = [(size, size)] * len(paths)
            else:
                def shape(p: str) -> tuple[int, int]:
                    w, h = full_size(*header_size(p), size)
                    return h, w
                shapes = list(_run(pool, shape, paths, what))
            if not cache.make_room(image_bytes(shapes)):
                return _streamed(paths, shapes, decode, workers, what, view, cache, image_bytes(shapes))
            entry = cache.write(name, shapes, _run(pool, decode, paths, what), what=lambda: f"{what}s, {view}")
        note = f"made again: {note}" if note else "made"
    data, offsets = entry.data, entry.offsets

    def fetch(indices: Sequence[int]) -> list[np.ndarray]:
        out = []
        for i in indices:
            h, w = entry.shapes[i]
            out.append(np.array(data[offsets[i]:offsets[i] + 3 * h * w]).reshape(3, h, w))  # a writable copy
        return out

    return Images(entry.shapes, fetch, {"where": "disk", "view": view, "bytes": entry.nbytes, "cache": note,
                                        "file": str(cache.folder / f"{name}.u8")})


def _streamed(paths, shapes, decode, workers, what, view, cache, nbytes) -> Images:
    pool = ThreadPoolExecutor(workers)

    def fetch(indices: Sequence[int]) -> list[np.ndarray]:
        return list(_run(pool, decode, [paths[i] for i in indices], what))

    limit = "no limit" if cache.limit is None else f"{cache.limit / 1e9:.1f} GB"
    return Images(shapes, fetch, {"where": "decoded per batch", "view": view, "bytes": nbytes,
                                  "cache": f"not cached: {nbytes / 1e9:.2f} GB does not fit the cache ({limit}) "
                                           f"and the free disk of {cache.folder}"})


def decode_all(paths: Sequence[str], size: int, workers: int = 0, cache_dir: Path | None = None,
               what: str = "image") -> torch.Tensor:
    """(N, 3, size, size) uint8 tensor of the test views of the images at paths (in memory)."""
    if not paths:
        return torch.zeros((0, 3, size, size), dtype=torch.uint8)
    return decode_images(paths, size, square=True, workers=workers, cache_dir=cache_dir, what=what).stack()


@dataclass
class TrainSet:
    """Training rows over decoded images: a real shot repeated n times is n rows over one decoded image."""

    images: Images | torch.Tensor  # each file once: a decoded set, or a (M, 3, S, S) uint8 tensor
    index: torch.Tensor  # (N,) row -> image
    labels: torch.Tensor  # (N,) int64
    real: torch.Tensor  # (N,) bool: a real shot (True) or a synthetic image

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: torch.Tensor) -> tuple[list[torch.Tensor] | torch.Tensor, torch.Tensor, torch.Tensor]:
        which = self.index[rows]
        images = self.images[which] if isinstance(self.images, torch.Tensor) else self.images.get(which.tolist())
        return images, self.labels[rows], self.real[rows]


def plan_rows(synthetic: Sequence[Sample], real: Sequence[Sample], num_classes: int,
              repeats: Callable[[int, int], int] = lambda shots, synthetic_count: 1,
              ) -> tuple[list[str], list[tuple[int, int, bool]]]:
    """(unique image paths, synthetic ones first; rows of (image, label, is_real)). Each class's real shots are
    repeated repeats(shots of the class, synthetic images of the class) times; a file is decoded once however often."""
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
