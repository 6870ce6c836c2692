"""Tiny copies of the ten datasets, laid out the ways researchers keep them, with every class name real.

data/<key>.tsv lists each class in the official label order: the raw name as the dataset's own files spell it,
then the name CoOp uses. Each class gets 2 train, 1 val and 1 test image (ImageNet: 2 train, 1 test), 16x16, and
every image's bytes are unique and the same in every layout, so layouts with one split share one fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from datadream_bench.datasets.registry import DATASETS, quote_dirname

DATA = Path(__file__).parent / "data"
PER_CLASS = {"train": 2, "val": 1, "test": 1}
KEYS = tuple(DATASETS)


@lru_cache(maxsize=None)
def class_rows(key: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(line.split("\t")) for line in (DATA / f"{key}.tsv").read_text().splitlines())


def coop_names(key: str) -> list[str]:
    return [coop for _, coop in class_rows(key)]


@dataclass(frozen=True)
class Row:
    split: str
    label: int
    raw: str
    name: str
    n: int  # a running number across the dataset (file names)


@lru_cache(maxsize=None)
def table(key: str) -> tuple[Row, ...]:
    per = {"train": 2, "test": 1} if key == "imagenet" else PER_CLASS
    rows, n = [], 1
    for label, (raw, name) in enumerate(class_rows(key)):
        for split, count in per.items():
            for _ in range(count):
                rows.append(Row(split, label, raw, name, n))
                n += 1
    return tuple(rows)


@lru_cache(maxsize=None)
def image_bytes(key: str, n: int, fmt: str = "JPEG") -> bytes:
    """A unique image: the number n as a black/white bit pattern (survives JPEG), on a colour of the dataset."""
    bits = np.array([(n >> i) & 1 for i in range(64)], dtype=np.uint8).reshape(8, 8) * 255
    colour = np.frombuffer(hashlib.sha256(key.encode()).digest()[:3], dtype=np.uint8)
    arr = np.broadcast_to(colour, (16, 16, 3)).copy()
    arr[:8, :8] = bits[..., None]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, quality=95) if fmt == "JPEG" else Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def coop_relpath(key: str, row: Row) -> str:
    raw = row.raw
    return {
        "caltech101": f"{raw}/image_{row.n:04d}.jpg",
        "dtd": f"{raw}/{raw}_{row.n:04d}.jpg",
        "eurosat": f"{raw}/{raw}_{row.n}.jpg",
        "pets": f"{raw}_{row.n}.jpg",
        "flowers102": f"image_{row.n:05d}.jpg",
        "food101": f"{raw}/{row.n}.jpg",
        "sun397": f"{raw.strip('/')}/sun_{row.n:06d}.jpg",
        "cars": f"{'cars_test' if row.split == 'test' else 'cars_train'}/{row.n:05d}.jpg",
        "fgvc_aircraft": f"{row.n:07d}.jpg",
        "imagenet": f"{'val' if row.split == 'test' else 'train'}/{raw}/{raw}_{row.n}.JPEG",
    }[key]


# ---------------------------------------------------------------------------------------------------- CoOp / CSV
def build_coop(key: str, root: Path) -> dict:
    info = DATASETS[key]
    base = root / info.dirs[0]
    images = base / info.image_dir if info.image_dir else base
    for row in table(key):
        write(images / coop_relpath(key, row), image_bytes(key, row.n))
    if key == "fgvc_aircraft":
        _aircraft_files(base)
    elif key == "imagenet":
        (base / "classnames.txt").write_text("".join(f"{raw} {name}\n" for raw, name in class_rows(key)))
    else:
        split = {s: [[coop_relpath(key, r), r.label, r.name] for r in table(key) if r.split == s]
                 for s in ("train", "val", "test")}
        (base / info.split_file).write_text(json.dumps(split))
    if key == "flowers102":  # CoOp's oxford_flowers/ ships cat_to_name.json
        (base / "cat_to_name.json").write_text(json.dumps({raw: name for raw, name in class_rows(key)}))
    return {}


def _aircraft_files(base: Path) -> None:
    (base / "variants.txt").write_text("".join(f"{raw}\n" for raw, _ in class_rows("fgvc_aircraft")))
    for split in ("train", "val", "test"):
        lines = [f"{r.n:07d} {r.raw}\n" for r in table("fgvc_aircraft") if r.split == split]
        (base / f"images_variant_{split}.txt").write_text("".join(lines))


def build_csv(key: str, root: Path) -> dict:
    info = DATASETS[key]
    base = root / info.dirs[0]
    images = base / info.image_dir if info.image_dir else base
    flat = key in ("flowers102", "cars", "pets")
    meta = ["idx,folder_name,class_name"] + [f'{i},{_csv(raw.strip("/"))},{_csv(name)}'
                                             for i, (raw, name) in enumerate(class_rows(key))]
    (base / "metadata.csv").parent.mkdir(parents=True, exist_ok=True)
    (base / "metadata.csv").write_text("\n".join(meta) + "\n")
    lines = ["split,filename" + (",class" if flat else "")]
    for row in table(key):
        write(images / coop_relpath(key, row), image_bytes(key, row.n))
        lines.append(f"{row.split},{_csv(coop_relpath(key, row))}" + (f",{row.label}" if flat else ""))
    (base / "split.csv").write_text("\n".join(lines) + "\n")
    return {"source": "csv"}


def _csv(value: str) -> str:
    return f'"{value}"' if "," in value else value


# ---------------------------------------------------------------------------------------------- torchvision roots
def build_torchvision(key: str, root: Path) -> dict:
    return _TORCHVISION[key](root)


def _tv_pool(key: str, folder: Path, extra_raw: tuple[str, ...] = ()) -> dict:
    for row in table(key):
        write(folder / row.raw.strip("/") / f"img_{row.n:05d}.jpg", image_bytes(key, row.n))
    for j, raw in enumerate(extra_raw):  # classes CoOp leaves out
        write(folder / raw / f"img_x{j}.jpg", image_bytes(key, 900_000 + j))
    return {"source": "torchvision"}


def _tv_caltech(root: Path) -> dict:
    return _tv_pool("caltech101", root / "caltech101" / "101_ObjectCategories", ("BACKGROUND_Google", "Faces_easy"))


def _tv_eurosat(root: Path) -> dict:
    return _tv_pool("eurosat", root / "eurosat" / "2750")


def _tv_sun397(root: Path) -> dict:
    base = root / "SUN397"
    _tv_pool("sun397", base)
    (base / "ClassName.txt").write_text("".join(f"{raw}\n" for raw, _ in class_rows("sun397")))
    return {"source": "torchvision"}


def _tv_dtd(root: Path) -> dict:
    base = root / "dtd" / "dtd"
    for split in ("train", "val", "test"):
        lines = []
        for row in table("dtd"):
            if row.split == split:
                rel = f"{row.raw}/{row.raw}_{row.n:04d}.jpg"
                write(base / "images" / rel, image_bytes("dtd", row.n))
                lines.append(rel)
        write(base / "labels" / f"{split}1.txt", ("\n".join(lines) + "\n").encode())
    return {"source": "torchvision"}


def _tv_aircraft(root: Path) -> dict:
    base = root / "fgvc-aircraft-2013b" / "data"
    for row in table("fgvc_aircraft"):
        write(base / "images" / f"{row.n:07d}.jpg", image_bytes("fgvc_aircraft", row.n))
    _aircraft_files(base)
    return {"source": "torchvision"}


def _tv_pets(root: Path) -> dict:
    base = root / "oxford-iiit-pet"
    files = {"train": [], "test": []}
    for row in table("pets"):
        stem = f"{row.raw}_{row.n}"
        write(base / "images" / f"{stem}.jpg", image_bytes("pets", row.n))
        species = 1 if row.raw[0].isupper() else 2  # cat breeds are capitalised in the file names
        files["test" if row.split == "test" else "train"].append(f"{stem} {row.label + 1} {species} 1")
    write(base / "annotations" / "trainval.txt", ("\n".join(files["train"]) + "\n").encode())
    write(base / "annotations" / "test.txt", ("\n".join(files["test"]) + "\n").encode())
    return {"source": "torchvision"}


def _tv_flowers(root: Path) -> dict:
    from scipy.io import savemat

    base = root / "flowers-102"
    rows = table("flowers102")
    for row in rows:
        write(base / "jpg" / f"image_{row.n:05d}.jpg", image_bytes("flowers102", row.n))
    labels = np.zeros(len(rows), dtype=np.uint8)
    for row in rows:
        labels[row.n - 1] = row.label + 1
    savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    ids = {s: np.array([[r.n for r in rows if r.split == s]], dtype=np.uint16) for s in ("train", "val", "test")}
    savemat(base / "setid.mat", {"trnid": ids["train"], "valid": ids["val"], "tstid": ids["test"]})
    (base / "cat_to_name.json").write_text(json.dumps({raw: name for raw, name in class_rows("flowers102")}))
    return {"source": "torchvision"}


def _tv_food(root: Path) -> dict:
    base = root / "food-101"
    split_lists = {"train": {}, "test": {}}
    for row in table("food101"):
        write(base / "images" / row.raw / f"{row.n}.jpg", image_bytes("food101", row.n))
        part = "test" if row.split == "test" else "train"
        split_lists[part].setdefault(row.raw, []).append(f"{row.raw}/{row.n}")
    write(base / "meta" / "classes.txt", "".join(f"{raw}\n" for raw, _ in class_rows("food101")).encode())
    for part, lists in split_lists.items():
        write(base / "meta" / f"{part}.json", json.dumps(lists).encode())
    return {"source": "torchvision"}


def _tv_cars(root: Path) -> dict:
    from scipy.io import savemat

    base = root / "stanford_cars"
    names = np.empty((1, len(class_rows("cars"))), dtype=object)
    for i, (raw, _) in enumerate(class_rows("cars")):
        names[0, i] = raw
    annos = {"train": [], "test": []}
    for row in table("cars"):
        part = "test" if row.split == "test" else "train"
        fname = f"{row.n:05d}.jpg"
        write(base / f"cars_{part}" / fname, image_bytes("cars", row.n))
        annos[part].append((fname, row.label + 1))
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    for part, items in annos.items():
        arr = np.zeros((1, len(items)), dtype=[("fname", "O"), ("class", "O")])
        for i, (fname, cls) in enumerate(items):
            arr[0, i] = (np.array([fname]), np.array([[cls]], dtype=np.uint8))
        target = base / "devkit" / "cars_train_annos.mat" if part == "train" else \
            base / "cars_test_annos_withlabels.mat"
        savemat(target, {"annotations": arr})
    return {"source": "torchvision"}


def _tv_imagenet(root: Path) -> dict:
    import torch

    base = root / "imagenet"
    for row in table("imagenet"):
        folder = "val" if row.split == "test" else "train"
        write(base / folder / row.raw / f"{row.raw}_{row.n}.JPEG", image_bytes("imagenet", row.n))
    wnid_to_classes = {raw: (name, f"{name} (synonym)") for raw, name in class_rows("imagenet")}
    torch.save((wnid_to_classes, [raw for raw, _ in class_rows("imagenet")]), base / "meta.bin")
    return {"source": "torchvision"}


_TORCHVISION = {"caltech101": _tv_caltech, "dtd": _tv_dtd, "eurosat": _tv_eurosat, "fgvc_aircraft": _tv_aircraft,
                "pets": _tv_pets, "flowers102": _tv_flowers, "food101": _tv_food, "sun397": _tv_sun397,
                "cars": _tv_cars, "imagenet": _tv_imagenet}


# --------------------------------------------------------------------------------------------- Hugging Face / folders
def hf_label_names(key: str) -> list[str]:
    """Label names in an order other than the official one, as HF copies have them."""
    raws = [raw for raw, _ in class_rows(key)]
    if key == "flowers102":
        return sorted(raws)  # "1", "10", "100", ...: sorted as strings
    if key == "food101":  # cheesecake before cheese_plate
        i, j = raws.index("cheese_plate"), raws.index("cheesecake")
        raws[i], raws[j] = raws[j], raws[i]
        return raws
    return raws[::-1]


def build_hf(key: str, root: Path) -> dict:
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as HFImage

    names = hf_label_names(key)
    index = {n: i for i, n in enumerate(names)}
    features = Features({"image": HFImage(), "label": ClassLabel(names=names)})
    parts = {}
    for split, hf_split in (("train", "train"), ("val", "validation"), ("test", "test")):
        rows = [r for r in table(key) if r.split == split]
        if not rows:
            continue
        parts[hf_split] = Dataset.from_dict(
            {"image": [{"bytes": image_bytes(key, r.n), "path": Path(coop_relpath(key, r)).name} for r in rows],
             "label": [index[r.raw] for r in rows]}, features=features)
    target = root / DATASETS[key].dirs[0]
    DatasetDict(parts).save_to_disk(str(target))
    extra = {"source": "hf"}
    extra.update(_class_files(key, target))
    return extra


def build_folders(key: str, root: Path) -> dict:
    base = root / DATASETS[key].dirs[0]
    for row in table(key):
        write(base / row.split / folder_name(key, row) / Path(coop_relpath(key, row)).name,
              image_bytes(key, row.n))
    extra = {"source": "folder"}
    extra.update(_class_files(key, base))
    return extra


def folder_name(key: str, row: Row) -> str:
    """How a researcher names the class folder: raw names for most, CoOp's names (slash-safe) for some."""
    if key in ("fgvc_aircraft", "cars", "sun397"):
        return quote_dirname(row.name)
    return row.raw


def _class_files(key: str, base: Path) -> dict:
    """What a copy without label metadata needs: ImageNet's classnames.txt and Flowers' cat_to_name.json beside the
    data (found there), a class list for Cars (given as classes=)."""
    base.mkdir(parents=True, exist_ok=True)
    if key == "imagenet":
        (base / "classnames.txt").write_text("".join(f"{raw} {name}\n" for raw, name in class_rows(key)))
    if key == "flowers102":
        (base / "cat_to_name.json").write_text(json.dumps({raw: name for raw, name in class_rows(key)}))
    if key == "cars":
        listing = base.parent / "cars_classes.txt"
        listing.write_text("".join(f"{name}\n" for name in coop_names(key)))
        return {"classes": str(listing)}
    return {}


LAYOUTS = {"coop": build_coop, "csv": build_csv, "torchvision": build_torchvision, "hf": build_hf,
           "folder": build_folders}
CSV_KEYS = tuple(k for k in KEYS if DATASETS[k].split_file)  # the DISEF CSVs mirror CoOp's JSON splits


def expected_sizes(key: str) -> dict[str, int]:
    c = len(class_rows(key))
    return {"train": c, "val": c, "test": c} if key == "imagenet" else {"train": 2 * c, "val": c, "test": c}
