"""The CoOp layout: $DATA/<folder>/ with split_zhou_<Name>.json = {"train": [[relpath, label, classname], ...], ...}.

FGVC-Aircraft has no JSON: its own images_variant_{train,val,test}.txt and variants.txt are the split (the
torchvision root holds the same files). ImageNet: images/{train,val}/<wnid>/ and classnames.txt ("wnid name").
"""

from __future__ import annotations

import json
from pathlib import Path

from ..problems import Problem
from .base import Context, Found, Rows, finish, list_files


def find(info, base: Path) -> Path | None:
    for d in [base] + [base / name for name in info.dirs]:
        if info.split_file and (d / info.split_file).is_file():
            return d
        if info.key == "fgvc_aircraft" and aircraft_root(d):
            return d
        if info.key == "imagenet" and (d / "classnames.txt").is_file() and (d / "images" / "train").is_dir():
            return d
    return None


def looked_for(info) -> str:
    if info.key == "fgvc_aircraft":
        return "variants.txt + images_variant_{train,val,test}.txt (+ images/)"
    if info.key == "imagenet":
        return "classnames.txt + images/train/<wnid>/"
    return f"{info.split_file} (+ {info.image_dir or 'images'}/)"


def read(ctx: Context) -> Found:
    info = ctx.info
    if info.key == "fgvc_aircraft":
        return read_aircraft(ctx, aircraft_root(ctx.root) or ctx.root, "coop")
    if info.key == "imagenet":
        return read_imagenet(ctx)
    split_file = Path(ctx.extra.get("split_file") or ctx.root / info.split_file)
    return read_split_file(ctx, split_file, image_roots=[ctx.root / info.image_dir, ctx.root])


def read_split_file(ctx: Context, split_file: Path, image_roots: list[Path], source: str = "coop") -> Found:
    rows = Rows()
    where = str(split_file)
    try:
        data = json.loads(split_file.read_text())
    except (OSError, ValueError) as e:
        rows.problems.append(Problem(where, f"cannot read split file: {type(e).__name__}: {e}", kind="data"))
        data = {}
    if not isinstance(data, dict):
        rows.problems.append(Problem(where, "expected {\"train\": [[relpath, label, classname], ...], ...}",
                                     kind="data"))
        data = {}
    image_root = _image_root(data, image_roots)
    official: dict[str, tuple[int, str]] = {}
    n = ctx.info.num_classes
    for split in ("train", "val", "test"):
        rows.origin[split] = split_file.name
        for i, row in enumerate(data.get(split, [])):
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[1], int)):
                rows.problems.append(Problem(where, f"{split} row {i} is {row!r}, expected [relpath, label, name]"))
                continue
            relpath, label, name = row
            path = image_root / relpath
            if not 0 <= label < n:
                rows.problems.append(Problem(str(path), f"{split_file.name} {split} row {i}: label {label} is "
                                                        f"outside the class list 0..{n - 1}"))
                continue
            if rows.add_listed(split, image_root, str(relpath), str(label), f"{split_file.name} {split} row {i}"):
                official.setdefault(str(label), (label, str(name)))
    if "val" not in data:
        rows.origin.pop("val", None)
    return finish(ctx, source, rows, where, official=official, class_folders=ctx.info.key not in _FLAT)


_FLAT = ("flowers102", "cars", "pets", "fgvc_aircraft")  # images of all classes in one folder


def _image_root(data: dict, candidates: list[Path]) -> Path:
    """The folder the split's relpaths are relative to: the first candidate where the first row exists."""
    first = next((rows[0] for rows in data.values() if isinstance(rows, list) and rows), None)
    if isinstance(first, list) and first:
        for c in candidates:
            if (c / str(first[0])).exists():
                return c
    return candidates[0]


def aircraft_root(d: Path) -> Path | None:
    """The folder with variants.txt: the CoOp folder itself, or fgvc-aircraft-2013b/data of torchvision."""
    for c in (d, d / "data", d / "fgvc-aircraft-2013b" / "data"):
        if (c / "variants.txt").is_file() and (c / "images_variant_train.txt").is_file():
            return c
    return None


def read_aircraft(ctx: Context, root: Path, source: str) -> Found:
    rows = Rows()
    variants_file = root / "variants.txt"
    variants = [line.strip() for line in variants_file.read_text().splitlines() if line.strip()]
    official = {v: (i, v) for i, v in enumerate(variants)}
    for split in ("train", "val", "test"):
        f = root / f"images_variant_{split}.txt"
        if not f.is_file():
            rows.problems.append(Problem(str(f), "split file missing", kind="data"))
            continue
        rows.origin[split] = f.name
        for i, line in enumerate(f.read_text().splitlines()):
            if not line.strip():
                continue
            image_id, _, variant = line.strip().partition(" ")
            path = root / "images" / f"{image_id}.jpg"
            if variant not in official:
                rows.problems.append(Problem(str(path), f"{f.name} line {i + 1}: variant {variant!r} is outside "
                                                        f"the class list in variants.txt"))
                continue
            rows.add_listed(split, root / "images", f"{image_id}.jpg", variant, f"{f.name} line {i + 1}")
    return finish(ctx, source, rows, str(variants_file), official=official)


def read_imagenet(ctx: Context) -> Found:
    rows = Rows()
    names_file = ctx.root / "classnames.txt"
    official = {}
    for line in names_file.read_text().splitlines():
        wnid, _, name = line.strip().partition(" ")
        if wnid:
            official[wnid] = (len(official), name.strip())
    for folder, split in (("train", "train"), ("val", "test")):  # the official val set is the test set
        base = ctx.root / "images" / folder
        if not base.is_dir():
            rows.problems.append(Problem(str(base), "folder missing", kind="data"))
            continue
        rows.origin[split] = f"images/{folder}"
        for sub in sorted(p for p in base.iterdir() if p.is_dir()):
            if sub.name not in official:
                rows.problems.append(Problem(str(sub), f"wnid {sub.name!r} is not in {names_file.name}"))
                continue
            files = list_files(sub, rows)
            if not files:
                rows.problems.append(Problem(str(sub), "empty class folder"))
            for f in files:
                rows.add(split, f, sub.name)
    return finish(ctx, "coop", rows, str(names_file), official=official, class_folders=True,
                  notes=["test = the official ImageNet val set"])
