"""Plain image folders: <root>/<class>/<image>, or <root>/{train,val,test}/<class>/<image>.

Folder names are matched to class names through the registry (CoOp's renames, "%2F" for "/"), an optional
class_map file ({folder: class name}, YAML or JSON) and an optional class list for the order. Without split folders
the split is carved per class, seeded by class name.
"""

from __future__ import annotations

from pathlib import Path

from .base import SPLIT_DIRS, Context, Found, Rows, finish, read_class_folders


def find(info, base: Path) -> Path | None:
    for d in [base / name for name in info.dirs] + [base]:
        if d.is_dir() and _has_class_folders(d):
            return d
    return None


def looked_for(info) -> str:
    return "one subfolder per class (optionally under train/, val/, test/)"


def _has_class_folders(d: Path) -> bool:
    subs = [p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not subs:
        return False
    if any(p.name.lower() in SPLIT_DIRS for p in subs):
        return True
    return all(any(f.is_file() for f in p.iterdir()) or not any(p.iterdir()) for p in subs)


def read(ctx: Context) -> Found:
    rows = Rows()
    split_dirs = {p.name.lower(): p for p in ctx.root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_DIRS}
    if split_dirs:
        for name, folder in sorted(split_dirs.items()):
            split = SPLIT_DIRS[name]
            rows.origin[split] = f"{folder.name}/"
            read_class_folders(folder, split, rows)
    else:
        rows.origin["all"] = str(ctx.root)
        read_class_folders(ctx.root, "all", rows)
    return finish(ctx, "folder", rows, str(ctx.root), class_folders=True)
