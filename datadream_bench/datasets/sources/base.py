"""What every source shares: the rows it found, how they become classes and splits, and the problems on the way."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...fingerprint import seed_from
from ..classes import Classes, resolve
from ..manifest import SPLITS, Sample
from ..problems import Problem
from ..registry import DatasetInfo

IGNORED_FILES = frozenset({"Thumbs.db", "desktop.ini"})  # system files, never images (hidden files too)
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def leaves_folder(relpath: str) -> bool:
    """Whether a path a split file names escapes the folder it is relative to (absolute, or climbing out with ..).
    Symlinks inside the dataset are followed as any file is: a dataset may live on several disks."""
    p = relpath.replace("\\", "/")
    return posixpath.isabs(p) or p[1:3] == ":/" or posixpath.normpath(p).split("/")[0] == ".."


@dataclass
class Context:
    info: DatasetInfo
    root: Path  # where this source's files are
    work_dir: Path
    extra: dict
    class_list: list[tuple[str | None, str]] | None = None
    list_file: str = ""
    class_map: dict | None = None


@dataclass
class Found:
    source: str
    root: Path
    classes: Classes
    splits: dict[str, list[Sample]]
    problems: list[Problem]
    origin: dict[str, str] = field(default_factory=dict)  # split -> the file that named its rows
    class_folders: bool = False  # one folder per class: a file's folder must agree with its label
    notes: list[str] = field(default_factory=list)
    ignored: int = 0


@dataclass
class Rows:
    """(split, path, raw class name) as a source reads them, before classes are resolved."""

    items: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)
    ignored: int = 0

    def add(self, split: str, path: str | Path, raw: str) -> None:
        self.items.append((split, str(path), raw))

    def add_listed(self, split: str, folder: Path, name: str, raw: str, where: str) -> bool:
        """A row that a list or split file (`where`: file and row) names by a path relative to folder. A path that
        leaves the folder is a problem, not a row; returns whether the row was added."""
        if leaves_folder(name):
            self.problems.append(Problem(str(folder / name), f"{where}: {name!r} is outside {folder} (an absolute "
                                                             "path, or one climbing out with ..); list files name "
                                                             "images inside the dataset"))
            return False
        self.add(split, folder / name, raw)
        return True


def finish(ctx: Context, source: str, rows: Rows, where: str, *, official=None, class_folders=False,
           notes: list[str] | None = None) -> Found:
    problems = rows.problems
    classes = resolve(ctx.info, [raw for _, _, raw in rows.items], where, problems, official=official,
                      class_list=ctx.class_list, list_file=ctx.list_file, class_map=ctx.class_map)
    notes = list(notes or [])
    splits: dict[str, list[Sample]] = {}
    dropped: dict[str, int] = {}
    for split, path, raw in rows.items:
        if raw in classes.dropped:
            dropped[raw] = dropped.get(raw, 0) + 1
        elif raw in classes.label_of:
            splits.setdefault(split, []).append(Sample(path, classes.label_of[raw]))
        elif classes.names:  # (an unresolved class list was already reported as one problem)
            problems.append(Problem(path, f"class {raw!r} (from {rows.origin.get(split, where)}) is outside the "
                                          f"class list of {len(classes.names)} classes"))
    for raw, n in sorted(dropped.items()):
        notes.append(f"left out class {raw!r} ({n} images), as CoOp does")
    if classes.how:
        notes.append(f"class order: {classes.how}")
    splits = carve_missing(ctx, splits, classes.names, notes)
    return Found(source, ctx.root, classes, splits, problems, dict(rows.origin), class_folders, notes, rows.ignored)


def carve_missing(ctx: Context, splits: dict[str, list[Sample]], names, notes: list[str]) -> dict[str, list[Sample]]:
    """Where a copy ships no val (or no split at all), carve one per class, seeded by dataset and class name only."""
    info = ctx.info
    if "all" in splits:
        pool = splits.pop("all")
        fractions = dict(zip(SPLITS, info.carve))
        for name, part in _carve(info, pool, names, ctx.root, fractions).items():
            splits.setdefault(name, []).extend(part)
        notes.append(f"no split shipped: carved train/val/test {info.carve} per class (seeded by class name)")
    if "train" in splits and "val" not in splits:
        parts = _carve(info, splits["train"], names, ctx.root, {"val": info.val_fraction, "train": 1.0})
        splits["train"], splits["val"] = parts["train"], parts["val"]
        notes.append(f"no val split shipped: {info.val_fraction:.0%} of train per class moved to val (seeded)")
    return {name: splits[name] for name in SPLITS if name in splits}


def _carve(info: DatasetInfo, pool: list[Sample], names, root: Path, fractions: dict) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {name: [] for name in fractions}
    by_label: dict[int, list[Sample]] = {}
    for s in pool:
        by_label.setdefault(s.label, []).append(s)
    order = list(fractions)
    for label, group in sorted(by_label.items()):
        # Sorted by path below the root, so a copy moved elsewhere is carved the same way.
        group.sort(key=lambda s: _relative(s.path, root))
        perm = np.random.default_rng(seed_from("carve", info.key, names[label] if names else label)).permutation(
            len(group))
        start = 0
        for name, count in zip(order, _part_sizes([fractions[name] for name in order], len(group))):
            out[name].extend(group[j] for j in perm[start:start + count])
            start += count
    return out


def _part_sizes(fractions: list[float], n: int) -> list[int]:
    """Rounded shares of n; the last part takes the rest, and with n >= parts no part is left empty."""
    sizes = [int(round(f * n)) for f in fractions[:-1]]
    if n >= len(fractions):
        sizes = [max(1, s) for s in sizes]
        while sum(sizes) > n - 1:
            sizes[sizes.index(max(sizes))] -= 1
    return sizes + [n - sum(sizes)]


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def list_files(folder: Path, rows: Rows) -> list[Path]:
    """Files of a class folder, sorted; hidden and system files are counted as ignored, never read."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in IGNORED_FILES:
            rows.ignored += 1
        elif p.is_file():
            out.append(p)
    return out


def read_class_folders(folder: Path, split: str, rows: Rows) -> None:
    """folder/<class>/<image>: one row per file; an empty class folder is a problem."""
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = list_files(sub, rows)
        if not files:
            rows.problems.append(Problem(str(sub), "empty class folder"))
        for f in files:
            rows.add(split, f, sub.name)


def first_existing(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.exists()), None)
