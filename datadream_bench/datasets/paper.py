"""The dataset plugin of a paper dataset: find the user's copy, read it through its source, compile the manifest.

DatasetOptions.extra keys (all optional):
  source       auto (default) | coop | csv | torchvision | hf | folder
  path         the folder of this dataset's copy (default: searched under data_root by known folder names)
  split_file   a CoOp split_zhou_*.json to use instead of the one in the folder (coop source)
  classes      a class list giving names and canonical order: CoOp split file, cat_to_name.json, classnames.txt,
               metadata.csv, cars_meta.mat, or one name a line (needed for cars / flowers102 from folders or HF)
  class_map    YAML or JSON {folder or label name: class name}, for folder names the registry does not know
  protocol     standard (default) | datadream-released (parity checks only; see protocol.py)
  names        the class names prompts use: datadream (default: DataDream's own lists) | coop (the canonical names)
  partition    DTD partition 1-10 for a torchvision root (default 1)
  images       the image folder that a CSV split's filenames are relative to (default: searched)
  hf_name      a dataset name in the local Hugging Face cache (offline), instead of a save_to_disk folder
  hf_cache     that cache's folder (default: the datasets library's)
  image_column, label_column   HF columns (default: the Image feature and the ClassLabel feature)
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import UsageError
from . import prompt_names
from . import protocol as protocols
from .adapter import DatasetAdapter, DatasetOptions
from .classes import read_class_list
from .manifest import DatasetManifest
from .problems import DatasetInvalid, Problem
from .registry import DatasetInfo
from .sources import SOURCES, locate
from .sources.base import Context

EXTRA_KEYS = ("source", "path", "split_file", "classes", "class_map", "protocol", "names", "partition", "images",
              "hf_name", "hf_cache", "image_column", "label_column")


class PaperDataset(DatasetAdapter):
    def __init__(self, info: DatasetInfo):
        self.info = info
        self.key = info.key
        self.description = f"{info.title}: {info.num_classes} classes (CoOp split {info.coop_sizes[0]}/" \
                           f"{info.coop_sizes[1] or '-'}/{info.coop_sizes[2]})"
        self.num_classes = info.num_classes
        self.prompt_word = info.prompt_word
        self.template = info.template

    def load(self, options: DatasetOptions) -> DatasetManifest:
        manifest, problems = self.collect(options)
        if problems:
            raise DatasetInvalid(self.key, problems)
        return manifest

    def collect(self, options: DatasetOptions) -> tuple[DatasetManifest, list[Problem]]:
        """The manifest and every problem met while reading it (raised together later, by validation)."""
        extra = dict(options.extra)
        unknown = sorted(set(extra) - set(EXTRA_KEYS))
        if unknown:
            raise UsageError(f"{self.key}: unknown dataset option(s) {', '.join(unknown)}; valid: "
                             f"{', '.join(EXTRA_KEYS)}")
        protocol = extra.get("protocol", "standard")
        if protocol not in protocols.PROTOCOLS:
            raise UsageError(f"{self.key}: unknown protocol {protocol!r}; valid: {', '.join(protocols.PROTOCOLS)}")
        names = extra.get("names", prompt_names.DEFAULT)
        prompt_names.prompt_names(self.key, names, ())  # an unknown choice is refused before any file is read
        base = extra.get("path") or options.data_root
        if base is None and not extra.get("hf_name"):
            raise UsageError(f"dataset {self.key!r} needs --data-root (the folder that holds your copy) or path=")
        if extra.get("hf_name"):
            source, root = "hf", Path(base or ".")
        else:
            source, root = locate(self.info, extra.get("source", "auto"), Path(base).expanduser())
        ctx = Context(self.info, root, Path(options.work_dir), extra, class_map=_read_class_map(extra))
        listed = extra.get("classes") or _beside(self.info, root)
        if listed:
            ctx.class_list, ctx.list_file = read_class_list(listed), str(listed)
        found = SOURCES[source].read(ctx)
        splits = {name: tuple(samples) for name, samples in found.splits.items()}
        splits, notes = protocols.apply(self.key, protocol, splits)
        manifest = DatasetManifest(
            key=self.key, classes=found.classes.names, splits=splits, prompt_word=self.info.prompt_word,
            template=self.info.template, source=source, protocol=protocol,
            prompt_names=prompt_names.prompt_names(self.key, names, found.classes.names), names=names,
            meta={"root": str(found.root), "origin": found.origin, "class_folders": found.class_folders,
                  "notes": found.notes + notes, "ignored_files": found.ignored},
        )
        return manifest, found.problems


def _read_class_map(extra: dict) -> dict | None:
    path = extra.get("class_map")
    if not path:
        return None
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise UsageError(f"class map {path} cannot be read: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(f"class map {path}: expected a mapping {{folder or label name: class name}}")
    return {str(k): v for k, v in data.items()}


_BESIDE = {"wnid": "classnames.txt", "numeric": "cat_to_name.json"}


def _beside(info: DatasetInfo, root: Path) -> Path | None:
    """The class list that copies keep beside the images: ImageNet's classnames.txt, Flowers' cat_to_name.json."""
    name = _BESIDE.get(info.style)
    if name is None:
        return None
    return next((d / name for d in (root, root.parent) if (d / name).is_file()), None)
