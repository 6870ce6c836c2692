"""The few-shot draw: k train images per class, a pure function of (dataset fingerprint, seed, k), nested in k."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..fingerprint import file_digest, fingerprint, seed_from
from .manifest import DatasetManifest, Sample
from .problems import DatasetInvalid, Problem
from .registry import normalized, unquote_dirname


@dataclass(frozen=True)
class FewShot:
    dataset_fingerprint: str
    seed: int
    k: int
    classes: tuple[str, ...]
    shots: tuple[tuple[Sample, ...], ...]  # shots[label] = k samples of that class
    chosen: str = ""  # the fingerprint of the chosen images' content digests, class by class

    @property
    def samples(self) -> list[Sample]:
        return [s for group in self.shots for s in group]

    def fingerprint(self) -> str:
        key = {"dataset": self.dataset_fingerprint, "seed": self.seed, "k": self.k}
        if self.chosen:
            key["chosen"] = self.chosen
        return fingerprint(key)

    def to_json(self) -> dict:
        return {
            "dataset_fingerprint": self.dataset_fingerprint,
            "seed": self.seed,
            "k": self.k,
            "classes": list(self.classes),
            "shots": [[s.path for s in group] for group in self.shots],
            **({"chosen": self.chosen} if self.chosen else {}),
        }


def draw_few_shot(dataset: DatasetManifest, seed: int, k: int) -> FewShot:
    """Each class's train images are put in one seeded order that does not depend on k; the draw is its first k.

    So the 4-shot draw is inside the 16-shot draw, and the order depends on the dataset's content fingerprint, the
    seed and the images' bytes only: a class's images are ordered by content digest before the seeded permutation,
    so the same images under other paths or another layout draw the same set. The set's key holds the digests of
    the chosen images.
    """
    if k < 1:
        raise UsageError(f"shots must be at least 1, got {k}")
    fp = dataset.fingerprint()
    digests = dataset.meta.get("_digests") or {}  # filled by validation, which reads every file once anyway
    shots, chosen = [], []
    for label, group in enumerate(dataset.by_class("train")):
        if len(group) < k:
            raise UsageError(
                f"{dataset.key}: class {dataset.classes[label]!r} has {len(group)} train images, fewer than {k} shots"
            )
        keyed = sorted((digests.get(s.path) or file_digest(s.path), s.path, s) for s in group)
        order = np.random.default_rng(seed_from(fp, seed, dataset.classes[label])).permutation(len(keyed))
        picked = [keyed[i] for i in order[:k]]
        shots.append(tuple(s for _, _, s in picked))
        chosen.append([digest for digest, _, _ in picked])
    return FewShot(fp, seed, k, dataset.classes, tuple(shots), fingerprint(chosen))


def save_few_shot(draw: FewShot, path: Path, roots: dict[str, str | Path | None] | None = None) -> None:
    """Save a draw. roots (e.g. {"work_dir": ..., "data_root": ...}, tried in order): the shot paths are stored
    relative to the first root that holds them all, named in "paths_relative_to", so that a copied work dir, or
    a process with another current directory, still finds the shots. Written under a unique temporary name."""
    from ..artifacts import write_bytes_atomic

    data = draw.to_json()
    for name, root in (roots or {}).items():
        rel = _relative_all([p for group in data["shots"] for p in group], root)
        if rel is not None:
            it = iter(rel)
            data["shots"] = [[next(it) for _ in group] for group in data["shots"]]
            data["paths_relative_to"] = name
            break
    write_bytes_atomic(path, json.dumps(data, indent=1).encode())


def _relative_all(paths: list[str], root: str | Path | None) -> list[str] | None:
    if root is None:
        return None
    root = Path(root).resolve()
    try:
        return [Path(p).resolve().relative_to(root).as_posix() for p in paths]
    except ValueError:
        return None


def import_few_shot(dataset: DatasetManifest, source: str | Path, seed: int = 0) -> FewShot:
    """A few-shot set chosen elsewhere: <source>/<class>/<images> (DataDream's real_train_fewshot/seed0/), or a
    file listing paths (one a line, a JSON list, or a saved draw). Every image must be a train image of its class:
    matched to the train pool by content, so copies count. Within a class, images are taken in file-name order
    (DataDream's smaller sets are the first k of a larger one). All problems are raised together."""
    source = Path(source)
    pool: dict[str, Sample] = {}
    digests = dataset.meta.get("_digests") or {}
    for s in dataset.split("train"):
        pool.setdefault(digests.get(s.path) or file_digest(s.path), s)
    problems: list[Problem] = []
    groups: list[list[Sample]] = [[] for _ in dataset.classes]
    for path, label in _listed(dataset, source, problems):
        if not path.is_file():
            problems.append(Problem(str(path), "few-shot image not found"))
            continue
        match = pool.get(file_digest(path))
        if match is None:
            problems.append(Problem(str(path), "not an image of the train split (no train file has its content)"))
        elif label is not None and match.label != label:
            problems.append(Problem(str(path), f"in the folder of class {dataset.classes[label]!r} but the train "
                                               f"split labels it {dataset.classes[match.label]!r}"))
        else:
            groups[match.label].append(match)
    sizes = {len(g) for g in groups}
    if len(sizes) > 1:
        k = max(sizes)
        for label, g in enumerate(groups):
            if len(g) != k:
                problems.append(Problem(str(source), f"class {dataset.classes[label]!r} has {len(g)} few-shot "
                                                     f"images, others {k}"))
    if problems:
        raise DatasetInvalid(dataset.key, problems)
    k = sizes.pop()
    if k < 1:
        raise UsageError(f"{source}: no few-shot images found")
    fp = dataset.fingerprint()
    chosen = fingerprint([[digests.get(s.path) or file_digest(s.path) for s in g] for g in groups])
    return FewShot(fp, seed, k, dataset.classes, tuple(tuple(g) for g in groups), chosen)


def _listed(dataset: DatasetManifest, source: Path, problems: list[Problem]):
    """(path, label or None) of every listed image; a class folder that matches no class is a problem."""
    if source.is_dir():
        index = {}
        for label, name in enumerate(dataset.classes):
            index.setdefault(name, label)
            index.setdefault(normalized(name), label)
        for folder in sorted(p for p in source.iterdir() if p.is_dir()):
            name = unquote_dirname(folder.name)
            label = index.get(name, index.get(normalized(name)))
            if label is None:
                problems.append(Problem(str(folder), "folder matches no class of the dataset"))
                continue
            for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
                yield f, label
        return
    if not source.is_file():
        raise UsageError(f"few-shot set {source} does not exist")
    text = source.read_text()
    base = source.parent
    if source.suffix.lower() == ".json":
        data = json.loads(text)
        paths = [p for group in data["shots"] for p in group] if isinstance(data, dict) else list(data)
        if isinstance(data, dict) and data.get("paths_relative_to") == "work_dir":
            base = source.parent.parent.parent  # a draw saved by a run: <work dir>/fewshot/<dataset>/<key>.json
    else:
        paths = [line.strip() for line in text.splitlines() if line.strip()]
    for p in paths:
        path = Path(p)
        yield (path if path.is_absolute() else base / path), None
