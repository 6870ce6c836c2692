"""Hugging Face `datasets` copies: a save_to_disk folder, or a dataset in the local cache (offline, by name).

Labels are mapped by *name* (ClassLabel names or string labels), never by index: copies order labels differently
(food101 swaps cheesecake / cheese_plate; a flowers copy sorts "1", "10", "100"). Images are materialised once as
files under <work_dir>/datasets/hf/<key>/<content key>/ so the rest of the pipeline sees paths; the stored bytes are
written unchanged, so the same images give the same content fingerprint as in any other layout.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

from PIL import Image

from ...errors import UsageError
from ...fingerprint import fingerprint
from ..images import IMAGE_EXTENSIONS
from ..problems import Problem
from .base import SPLIT_DIRS, Context, Found, Rows, finish

_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif",
            "PPM": ".ppm"}


def find(info, base: Path) -> Path | None:
    for d in [base] + [base / name for name in info.dirs] + [base / f"{name}-hf" for name in info.dirs]:
        if (d / "dataset_dict.json").is_file() or (
                (d / "state.json").is_file() and (d / "dataset_info.json").is_file()):
            return d
    return None


def looked_for(info) -> str:
    return "a save_to_disk folder (dataset_dict.json, or state.json + dataset_info.json)"


def open_dataset(ctx: Context) -> dict:
    """split name -> datasets.Dataset, offline."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    name = ctx.extra.get("hf_name")
    try:
        if name:
            loaded = datasets.load_dataset(name, cache_dir=ctx.extra.get("hf_cache"))
        else:
            loaded = datasets.load_from_disk(str(ctx.root))
    except Exception as e:  # datasets raises many types for "not there offline"; all mean the same to the user
        where = f"the local cache ({ctx.extra.get('hf_cache') or datasets.config.HF_DATASETS_CACHE})" if name \
            else str(ctx.root)
        raise UsageError(f"cannot open Hugging Face dataset {name or ctx.root} offline from {where}: "
                         f"{type(e).__name__}: {e}") from None
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def read(ctx: Context) -> Found:
    parts = open_dataset(ctx)
    rows = Rows()
    notes = []
    key = fingerprint({"key": ctx.info.key, "splits": {s: getattr(d, "_fingerprint", None) or len(d)
                                                       for s, d in sorted(parts.items())}})
    out = Path(ctx.work_dir) / "datasets" / "hf" / ctx.info.key / key
    index = out / "rows.json"
    if not index.is_file():
        _materialise(ctx, parts, out)
    listing = json.loads(index.read_text())
    for split, rel, raw in listing["rows"]:
        rows.add(split, out / rel, raw)
        rows.origin[split] = f"HF split {listing['names'][split]!r}"
    rows.problems.extend(Problem(p, r) for p, r in listing["problems"])
    notes.append(f"materialised {len(listing['rows'])} images under {out}")
    notes.extend(f"HF split {s!r} not used (not train/val/test)" for s in listing["unused"])
    return finish(ctx, "hf", rows, str(ctx.root if not ctx.extra.get("hf_name") else ctx.extra["hf_name"]),
                  notes=notes)


def _columns(ctx: Context, features) -> tuple[str, str]:
    import datasets

    image = ctx.extra.get("image_column") or next(
        (k for k, f in features.items() if isinstance(f, datasets.Image)), None)
    label = ctx.extra.get("label_column") or next(
        (k for k, f in features.items() if isinstance(f, datasets.ClassLabel)), None) or next(
        (k for k in ("label", "labels", "class", "fine_label") if k in features), None)
    if image is None or label is None or image not in features or label not in features:
        raise UsageError(f"{ctx.root}: cannot tell the image and label columns among {list(features)}; "
                         "give image_column= and label_column=")
    return image, label


def _materialise(ctx: Context, parts: dict, out: Path) -> None:
    import datasets

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rows, problems, names, unused = [], [], {}, []
    for hf_split, ds in sorted(parts.items()):
        split = SPLIT_DIRS.get(hf_split.lower())
        if split is None:
            unused.append(hf_split)
            continue
        names[split] = hf_split
        image_col, label_col = _columns(ctx, ds.features)
        feature = ds.features[label_col]
        label_names = feature.names if isinstance(feature, datasets.ClassLabel) else None
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
        (tmp / split).mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(ds):
            value = row[label_col]
            raw = label_names[value] if label_names is not None and isinstance(value, int) and 0 <= value < len(
                label_names) else str(value)
            if label_names is not None and not (isinstance(value, int) and 0 <= value < len(label_names)):
                problems.append((f"{ctx.root}[{hf_split}][{i}]", f"label {value!r} is outside the ClassLabel names"))
                continue
            image = row[image_col] or {}
            data, src = image.get("bytes"), image.get("path")
            if data is None and src and Path(src).is_file():
                data = Path(src).read_bytes()
            if data is None:
                problems.append((f"{ctx.root}[{hf_split}][{i}]", "row has no image bytes and no readable path"))
                continue
            rel = f"{split}/{i:07d}{_extension(data, src)}"
            (tmp / rel).write_bytes(data)
            rows.append((split, rel, raw))
    (tmp / "rows.json").write_text(json.dumps({"rows": rows, "problems": problems, "names": names,
                                               "unused": unused}))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # another process finished first: its copy is the same content
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(out)


def _extension(data: bytes, src: str | None) -> str:
    """The original file's extension; else the one of the format the bytes are in; else ".bin" (then reported)."""
    if src and Path(src).suffix.lower() in IMAGE_EXTENSIONS:
        return Path(src).suffix.lower()
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _FORMATS.get(img.format, ".bin")
    except (OSError, ValueError):
        return Path(src).suffix.lower() if src and Path(src).suffix else ".bin"
