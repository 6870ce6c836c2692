"""From the raw class names a source finds to canonical classes: names as CoOp spells them, in CoOp's label order.

Three ways, strongest first: ids from the dataset's own metadata (a CoOp split, variants.txt, devkit files), checked
against the registry's order rule; a class list the user points at (extra "classes"); the registry's rule alone.
Labels are always matched by name (or by the metadata's own id), never by a foreign index.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import UsageError
from .problems import Problem
from .registry import DatasetInfo, class_name, normalized, order_key


@dataclass
class Classes:
    names: tuple[str, ...]
    label_of: dict[str, int]  # raw name -> label
    dropped: set[str] = field(default_factory=set)  # raw classes left out on purpose (CoOp's choice)
    how: str = ""  # how the order was established (recorded in the report)


def resolve(info: DatasetInfo, raws, where: str, problems: list[Problem], *,
            official: dict[str, tuple[int, str]] | None = None,
            class_list: list[tuple[str | None, str]] | None = None, list_file: str = "",
            class_map: dict[str, str] | None = None) -> Classes:
    """Map every raw name to a canonical label. Problems are appended, never raised, so all show at once."""
    class_map = class_map or {}
    raws = sorted(set(raws))
    dropped = {r for r in raws if r in info.drop or class_name(info, r) in info.drop}
    raws = [r for r in raws if r not in dropped]
    if official is not None:
        return _from_official(info, raws, where, problems, official, class_list, list_file, dropped)
    if class_list is not None:
        return _from_list(info, raws, where, problems, class_list, list_file, class_map, dropped)
    return _from_rule(info, raws, where, problems, class_map, dropped)


def _from_official(info, raws, where, problems, official, class_list, list_file, dropped) -> Classes:
    by_label: dict[int, str] = {}
    for raw, (label, name) in official.items():
        if by_label.setdefault(label, name) != name:
            problems.append(Problem(where, f"label {label} is named both {by_label[label]!r} and {name!r}",
                                    kind="data"))
    n = len(by_label)
    missing = [i for i in range(n) if i not in by_label]
    if missing:
        problems.append(Problem(where, f"labels are not 0..{n - 1}: missing {missing[:10]}", kind="data"))
    names = tuple(by_label[i] for i in sorted(by_label))
    # The order check: raw ids when the raw names are ids (ImageNet wnids), else the class names.
    if info.style == "wnid":
        keys = [(raw,) for raw, _ in sorted(official.items(), key=lambda kv: kv[1][0])]
    else:
        keys = [order_key(info, name) for name in names]
    if all(k is not None for k in keys):
        for i in range(1, len(keys)):
            if keys[i] <= keys[i - 1]:
                problems.append(Problem(where, f"label order is not {info.key}'s canonical order: label {i} "
                                               f"{names[i]!r} should come before label {i - 1} {names[i - 1]!r}",
                                        kind="data"))
                break
    if class_list is not None:
        listed = [name for _, name in class_list]
        if [normalized(x) for x in listed] != [normalized(x) for x in names]:
            problems.append(Problem(list_file, f"class list disagrees with {where}: "
                                               f"{_first_difference(listed, list(names))}", kind="data"))
    label_of = {raw: label for raw, (label, _) in official.items() if raw not in dropped}
    return Classes(names, label_of, dropped, how=f"label ids from {Path(where).name}")


def _from_list(info, raws, where, problems, class_list, list_file, class_map, dropped) -> Classes:
    names = tuple(name for _, name in class_list)
    by_id = {cid: i for i, (cid, _) in enumerate(class_list) if cid is not None}
    by_name: dict[str, list[int]] = {}
    by_norm: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_name.setdefault(name, []).append(i)
        by_norm.setdefault(normalized(name), []).append(i)
    label_of: dict[str, int] = {}
    for raw in raws:
        name = class_map.get(raw) or class_name(info, raw)
        ident = raw if raw in by_id else name  # a class_map may point a label name at an id (e.g. a wnid)
        hits = ([by_id[ident]] if ident in by_id else by_name.get(name) or by_norm.get(normalized(name))
                or ([int(raw) - 1] if info.style == "numeric" and raw.isdigit() and 0 < int(raw) <= len(names)
                    else []))
        if len(hits) == 1:
            label_of[raw] = hits[0]
        elif not hits:
            problems.append(Problem(f"{where}/{raw}", f"class {raw!r} matches no class in {list_file}",
                                    kind="data"))
        else:
            problems.append(Problem(f"{where}/{raw}", f"class {raw!r} matches {len(hits)} classes of {list_file}; "
                                                      "give a class_map", kind="data"))
    _check_one_to_one(label_of, names, where, problems)
    return Classes(names, label_of, dropped, how=f"class list {list_file}")


def _from_rule(info, raws, where, problems, class_map, dropped) -> Classes:
    named = {raw: class_map.get(raw) or class_name(info, raw) for raw in raws}
    if info.style == "wnid":
        problems.append(Problem(where, "ImageNet class folders are wnids; their names come from classnames.txt "
                                       "(lines 'wnid name'): put it beside the folders or give classes=FILE",
                                kind="data"))
        return Classes((), {}, dropped)
    if info.style == "numeric" and any(n.isdigit() for n in named.values()):
        problems.append(Problem(where, f"{info.key} labels here are numbers; their names need a class list "
                                       "(cat_to_name.json or a CoOp split file): give classes=FILE", kind="data"))
        return Classes((), {}, dropped)
    keys = {raw: order_key(info, name) for raw, name in named.items()}
    if any(k is None for k in keys.values()):
        problems.append(Problem(where, f"{info.key}'s label order cannot be derived from class names; give "
                                       "classes=FILE (a CoOp split file, the devkit's meta file, or one name a line "
                                       "in the official order)", kind="data"))
        return Classes((), {}, dropped)
    ordered = sorted(raws, key=lambda r: keys[r])
    names: list[str] = []
    label_of: dict[str, int] = {}
    for raw in ordered:
        if names and keys[raw] == order_key(info, names[-1]) and named[raw] == names[-1]:
            label_of[raw] = len(names) - 1  # two spellings of one class (e.g. "AnnualCrop" and "Annual Crop Land")
            problems.append(Problem(f"{where}/{raw}", f"a second folder for class {named[raw]!r}", kind="data"))
            continue
        label_of[raw] = len(names)
        names.append(named[raw])
    return Classes(tuple(names), label_of, dropped, how=f"{info.order} order of the names (registry rule)")


def _check_one_to_one(label_of: dict[str, int], names, where: str, problems: list[Problem]) -> None:
    seen: dict[int, str] = {}
    for raw, label in sorted(label_of.items()):
        if label in seen:
            problems.append(Problem(f"{where}/{raw}", f"{raw!r} and {seen[label]!r} both map to class {names[label]!r}",
                                    kind="data"))
        seen.setdefault(label, raw)


def _first_difference(a: list[str], b: list[str]) -> str:
    if len(a) != len(b):
        return f"{len(a)} classes vs {len(b)}"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if normalized(x) != normalized(y))
    return f"class {i} is {a[i]!r} vs {b[i]!r}"


def read_class_list(path: str | Path) -> list[tuple[str | None, str]]:
    """(id or None, name) in label order, from: a CoOp split file, cat_to_name.json, a YAML/JSON list or {id: name},
    classnames.txt ("wnid name" lines) or one name a line, metadata.csv (idx,folder_name,class_name), cars_meta.mat."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"class list {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".yaml", ".yml"):
            data = json.loads(path.read_text()) if suffix == ".json" else yaml.safe_load(path.read_text())
            return _from_structure(data, path)
        if suffix == ".csv":
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            if not rows or not {"idx", "class_name"} <= set(rows[0]):
                raise UsageError(f"class list {path}: expected a CSV with columns idx,folder_name,class_name")
            rows.sort(key=lambda r: int(r["idx"]))
            return [(r.get("folder_name"), r["class_name"]) for r in rows]
        if suffix == ".mat":
            from .matfiles import cars_class_names

            return [(None, name) for name in cars_class_names(path)]
        out = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            first, _, rest = line.partition(" ")
            if rest and first[:1] == "n" and first[1:].isdigit():
                out.append((first, rest.strip()))
            else:
                out.append((None, line))
        return out
    except (ValueError, yaml.YAMLError, KeyError, TypeError) as e:
        raise UsageError(f"class list {path} cannot be read: {type(e).__name__}: {e}") from None


def _from_structure(data, path: Path) -> list[tuple[str | None, str]]:
    if isinstance(data, dict) and "train" in data and isinstance(data["train"], list):  # a CoOp split file
        by_label = {}
        for rows in (data.get(s, []) for s in ("train", "val", "test")):
            for row in rows:
                by_label.setdefault(int(row[1]), str(row[2]))
        return [(None, by_label[i]) for i in sorted(by_label)]
    if isinstance(data, dict):  # {"1": "pink primrose", ...}: ids in numeric order when they are numbers
        keys = sorted(data, key=lambda k: (0, int(k)) if str(k).isdigit() else (1, str(k)))
        return [(str(k), str(data[k])) for k in keys]
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return [(None, x) for x in data]
    raise UsageError(f"class list {path}: expected a CoOp split, a list of names or a mapping id -> name")
