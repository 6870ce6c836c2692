"""torchvision dataset roots, read from their metadata files directly: nothing here can download.

Each dataset's official split is used where it ships one (DTD partition 1, Flowers setid.mat, Pets trainval/test,
Food-101 meta/, Cars annotations, ImageNet train/val); otherwise (Caltech-101, EuroSAT, SUN397) the split is carved
per class, seeded by class name. Splits differ from CoOp's: the source is recorded, and the fingerprint tells.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import matfiles
from ..classes import read_class_list
from ..problems import Problem
from ..registry import class_name
from .base import Context, Found, Rows, finish, first_existing, list_files, read_class_folders
from .coop import aircraft_root, read_aircraft

MARKERS = {  # what marks a torchvision root, relative to the folder that holds the data
    "imagenet": ("meta.bin", "train"),
    "caltech101": ("101_ObjectCategories",),
    "dtd": ("labels", "images"),
    "eurosat": ("2750",),
    "fgvc_aircraft": ("variants.txt", "images_variant_train.txt"),
    "pets": ("annotations/trainval.txt", "images"),
    "flowers102": ("imagelabels.mat", "setid.mat", "jpg"),
    "food101": ("meta/classes.txt", "images"),
    "sun397": ("ClassName.txt",),
    "cars": ("devkit/cars_meta.mat",),
}
# torchvision's own folder names under its root
ROOT_DIRS = {"imagenet": "imagenet", "caltech101": "caltech101", "dtd": "dtd/dtd", "eurosat": "eurosat",
             "fgvc_aircraft": "fgvc-aircraft-2013b/data", "pets": "oxford-iiit-pet", "flowers102": "flowers-102",
             "food101": "food-101", "sun397": "SUN397", "cars": "stanford_cars"}


def find(info, base: Path) -> Path | None:
    names = [ROOT_DIRS[info.key]] + list(info.dirs) + [f"{d}/{d}" for d in info.dirs]
    for d in [base] + [base / n for n in names] + [base / n / "data" for n in info.dirs]:
        if all((d / m).exists() for m in MARKERS[info.key]):
            return d
    return None


def looked_for(info) -> str:
    return f"{ROOT_DIRS[info.key]}/ with {', '.join(MARKERS[info.key])}"


def read(ctx: Context) -> Found:
    return _READERS[ctx.info.key](ctx)


def _pool_of_folders(ctx: Context, folder: Path, note: str = "") -> Found:
    rows = Rows()
    read_class_folders(folder, "all", rows)
    rows.origin["all"] = folder.name
    return finish(ctx, "torchvision", rows, str(folder), class_folders=True, notes=[note] if note else None)


def _caltech(ctx: Context) -> Found:
    return _pool_of_folders(ctx, ctx.root / "101_ObjectCategories")


def _eurosat(ctx: Context) -> Found:
    return _pool_of_folders(ctx, ctx.root / "2750")


def _dtd(ctx: Context) -> Found:
    partition = int(ctx.extra.get("partition", 1))
    rows = Rows()
    for split in ("train", "val", "test"):
        f = ctx.root / "labels" / f"{split}{partition}.txt"
        if not f.is_file():
            rows.problems.append(Problem(str(f), "split file missing", kind="data"))
            continue
        rows.origin[split] = f.name
        for line in f.read_text().split():
            rows.add_listed(split, ctx.root / "images", line, line.split("/")[0], f.name)
    return finish(ctx, "torchvision", rows, str(ctx.root / "labels"), class_folders=True,
                  notes=[f"official DTD partition {partition}"])


def _aircraft(ctx: Context) -> Found:
    return read_aircraft(ctx, aircraft_root(ctx.root) or ctx.root, "torchvision")


def _pets(ctx: Context) -> Found:
    rows = Rows()
    official: dict[str, tuple[int, str]] = {}
    for split, name in (("train", "trainval.txt"), ("test", "test.txt")):
        f = ctx.root / "annotations" / name
        rows.origin[split] = name
        for i, line in enumerate(f.read_text().splitlines()):
            parts = line.split()
            if not parts or line.startswith("#"):
                continue
            image, class_id = parts[0], int(parts[1])
            breed = image.rsplit("_", 1)[0]
            official.setdefault(breed, (class_id - 1, class_name(ctx.info, breed)))
            rows.add_listed(split, ctx.root / "images", f"{image}.jpg", breed, f"{name} line {i + 1}")
    return finish(ctx, "torchvision", rows, str(ctx.root / "annotations" / "list.txt"), official=official,
                  notes=["official trainval/test; val carved from trainval"])


def _flowers(ctx: Context) -> Found:
    rows = Rows()
    labels = matfiles.field(ctx.root / "imagelabels.mat", "labels")
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        rows.origin[split] = "setid.mat"
        for image_id in matfiles.field(ctx.root / "setid.mat", key):
            rows.add(split, ctx.root / "jpg" / f"image_{int(image_id):05d}.jpg", str(int(labels[int(image_id) - 1])))
    return finish(ctx, "torchvision", rows, str(ctx.root / "imagelabels.mat"),
                  notes=["official setid.mat split (1020/1020/6149), not CoOp's"])


def _food(ctx: Context) -> Found:
    rows = Rows()
    classes = [c.strip() for c in (ctx.root / "meta" / "classes.txt").read_text().splitlines() if c.strip()]
    official = {c: (i, c) for i, c in enumerate(classes)}
    for split in ("train", "test"):
        as_json, as_txt = ctx.root / "meta" / f"{split}.json", ctx.root / "meta" / f"{split}.txt"
        if as_json.is_file():
            entries = [e for group in json.loads(as_json.read_text()).values() for e in group]
            rows.origin[split] = as_json.name
        else:
            entries = as_txt.read_text().split()
            rows.origin[split] = as_txt.name
        for e in entries:
            rows.add_listed(split, ctx.root / "images", f"{e}.jpg", e.split("/")[0], rows.origin[split])
    return finish(ctx, "torchvision", rows, str(ctx.root / "meta" / "classes.txt"), official=official,
                  class_folders=True, notes=["official train/test; val carved from train"])


def _sun397(ctx: Context) -> Found:
    rows = Rows()
    names_file = ctx.root / "ClassName.txt"
    raws = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    official = {raw: (i, class_name(ctx.info, raw)) for i, raw in enumerate(raws)}
    for raw in raws:
        folder = ctx.root / raw.strip("/")
        files = list_files(folder, rows) if folder.is_dir() else []
        if not files:
            rows.problems.append(Problem(str(folder), "class folder missing or empty", kind="data"))
        for f in files:
            rows.add("all", f, raw)
    rows.origin["all"] = names_file.name
    return finish(ctx, "torchvision", rows, str(names_file), official=official, class_folders=True)


def _cars(ctx: Context) -> Found:
    rows = Rows()
    devkit = ctx.root / "devkit"
    names = matfiles.cars_class_names(devkit / "cars_meta.mat")
    official = {str(i + 1): (i, class_name(ctx.info, n)) for i, n in enumerate(names)}
    test_annos = first_existing([ctx.root / "cars_test_annos_withlabels.mat",
                                 devkit / "cars_test_annos_withlabels.mat"])
    for split, annos, folder in (("train", devkit / "cars_train_annos.mat", "cars_train"),
                                 ("test", test_annos, "cars_test")):
        if annos is None:
            rows.problems.append(Problem(str(ctx.root / "cars_test_annos_withlabels.mat"), "test labels missing",
                                         kind="data"))
            continue
        rows.origin[split] = annos.name
        for fname, cls in matfiles.cars_annotations(annos):
            rows.add(split, ctx.root / folder / fname, str(cls))
    return finish(ctx, "torchvision", rows, str(devkit / "cars_meta.mat"), official=official,
                  notes=["official train/test; val carved from train"])


def _imagenet(ctx: Context) -> Found:
    rows = Rows()
    names_file = ctx.root / "classnames.txt"
    if names_file.is_file():
        listed = read_class_list(names_file)
        wnid_names = {wnid: name for wnid, name in listed if wnid}
    else:
        import torch

        # meta.bin is torchvision's torch.save((wnid_to_classes, val_wnids)): plain containers, safe to load
        wnid_to_classes, _ = torch.load(ctx.root / "meta.bin", weights_only=True)
        wnid_names = {wnid: names[0] for wnid, names in wnid_to_classes.items()}
    official = {wnid: (i, wnid_names[wnid]) for i, wnid in enumerate(sorted(wnid_names))}
    for folder, split in (("train", "train"), ("val", "test")):
        base = ctx.root / folder
        rows.origin[split] = folder
        for sub in sorted(p for p in base.iterdir() if p.is_dir()):
            files = list_files(sub, rows)
            if not files:
                rows.problems.append(Problem(str(sub), "empty class folder"))
            for f in files:
                rows.add(split, f, sub.name)
    return finish(ctx, "torchvision", rows, str(names_file if names_file.is_file() else ctx.root / "meta.bin"),
                  official=official, class_folders=True, notes=["test = the official ImageNet val set"])


_READERS = {"imagenet": _imagenet, "caltech101": _caltech, "dtd": _dtd, "eurosat": _eurosat,
            "fgvc_aircraft": _aircraft, "pets": _pets, "flowers102": _flowers, "food101": _food,
            "sun397": _sun397, "cars": _cars}
