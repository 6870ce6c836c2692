"""The few-shot draw: k train images per class, a pure function of (dataset fingerprint, seed, k), nested in k."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..fingerprint import fingerprint, seed_from
from .manifest import DatasetManifest, Sample


@dataclass(frozen=True)
class FewShot:
    dataset_fingerprint: str
    seed: int
    k: int
    classes: tuple[str, ...]
    shots: tuple[tuple[Sample, ...], ...]  # shots[label] = k samples of that class

    @property
    def samples(self) -> list[Sample]:
        return [s for group in self.shots for s in group]

    def fingerprint(self) -> str:
        return fingerprint({"dataset": self.dataset_fingerprint, "seed": self.seed, "k": self.k})

    def to_json(self) -> dict:
        return {
            "dataset_fingerprint": self.dataset_fingerprint,
            "seed": self.seed,
            "k": self.k,
            "classes": list(self.classes),
            "shots": [[s.path for s in group] for group in self.shots],
        }


def draw_few_shot(dataset: DatasetManifest, seed: int, k: int) -> FewShot:
    """Each class's train images are put in one seeded order that does not depend on k; the draw is its first k.

    So the 4-shot draw is inside the 16-shot draw, and the order depends on the dataset's content fingerprint and
    the seed only, never on process state.
    """
    if k < 1:
        raise UsageError(f"shots must be at least 1, got {k}")
    fp = dataset.fingerprint()
    shots = []
    for label, group in enumerate(dataset.by_class("train")):
        if len(group) < k:
            raise UsageError(
                f"{dataset.key}: class {dataset.classes[label]!r} has {len(group)} train images, fewer than {k} shots"
            )
        group = sorted(group, key=lambda s: s.path)
        order = np.random.default_rng(seed_from(fp, seed, dataset.classes[label])).permutation(len(group))
        shots.append(tuple(group[i] for i in order[:k]))
    return FewShot(fp, seed, k, dataset.classes, tuple(shots))


def save_few_shot(draw: FewShot, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(draw.to_json(), indent=1))
    tmp.replace(path)
