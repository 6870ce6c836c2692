"""The CoOp split as CSV (as the DISEF code keeps it): rows "split,filename" (Flowers adds "class"), beside a
metadata.csv of "idx,folder_name,class_name". A row's class is its "class" column, else the folder of its filename.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..problems import Problem
from .base import Context, Found, Rows, finish

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def find(info, base: Path) -> Path | None:
    for d in [base] + [base / name for name in info.dirs]:
        if (d / "metadata.csv").is_file() and split_csvs(d):
            return d
    return None


def looked_for(info) -> str:
    return "metadata.csv (idx,folder_name,class_name) + a CSV with split,filename columns"


def split_csvs(d: Path) -> list[Path]:
    out = []
    for f in sorted(d.glob("*.csv")):
        if f.name == "metadata.csv":
            continue
        with open(f, newline="") as fh:
            header = next(csv.reader(fh), [])
        if {"split", "filename"} <= {h.strip() for h in header}:
            out.append(f)
    return out


def read(ctx: Context) -> Found:
    info, root = ctx.info, ctx.root
    rows = Rows()
    meta_file = root / "metadata.csv"
    with open(meta_file, newline="") as f:
        meta = list(csv.DictReader(f))
    if not meta or not {"idx", "folder_name", "class_name"} <= set(meta[0]):
        rows.problems.append(Problem(str(meta_file), "expected columns idx,folder_name,class_name", kind="data"))
        meta = []
    official = {m["folder_name"]: (int(m["idx"]), m["class_name"]) for m in meta}
    by_idx = {str(idx): folder for folder, (idx, _) in official.items()}
    by_name = {name: folder for folder, (_, name) in official.items()}
    files = split_csvs(root)
    image_root = _image_root(ctx, files)
    for split_csv in files:
        with open(split_csv, newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                split = SPLIT_NAMES.get(row["split"].strip().lower())
                path = image_root / row["filename"].strip()
                if split is None:
                    rows.problems.append(Problem(str(split_csv), f"row {i + 2}: unknown split {row['split']!r}"))
                    continue
                rows.origin[split] = split_csv.name
                given = (row.get("class") or "").strip()
                folder = (by_idx.get(given) or (given if given in official else by_name.get(given))) if given \
                    else _class_folder(row["filename"].strip(), official)
                if folder not in official:
                    what = f"class {given!r}" if given else f"folder {folder!r}"
                    rows.problems.append(Problem(str(path), f"{split_csv.name} row {i + 2}: {what} is outside the "
                                                            f"class list in metadata.csv"))
                    continue
                rows.add_listed(split, image_root, row["filename"].strip(), folder, f"{split_csv.name} row {i + 2}")
    return finish(ctx, "csv", rows, str(meta_file), official=official,
                  class_folders=info.key not in ("flowers102", "cars", "pets", "fgvc_aircraft"))


def _image_root(ctx: Context, files: list[Path]) -> Path:
    """Where filenames are relative to: extra "images", else the first candidate holding the first row's file."""
    if ctx.extra.get("images"):
        return Path(ctx.extra["images"])
    info, root = ctx.info, ctx.root
    candidates = [root, root / info.image_dir] + [root.parent / d / info.image_dir for d in info.dirs]
    for f in files:
        with open(f, newline="") as fh:
            first = next(csv.DictReader(fh), None)
        if first:
            for c in candidates:
                if (c / first["filename"].strip()).exists():
                    return c
    return candidates[1]


def _class_folder(filename: str, official: dict) -> str:
    """The longest leading folder of filename that metadata.csv names (SUN397's are two levels: "a/abbey")."""
    parts = Path(filename).parts[:-1]
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        if prefix in official:
            return prefix
    return parts[0] if parts else filename
