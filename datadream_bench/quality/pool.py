"""The real train pool a synthetic set is compared with, listed in the work dir once per dataset fingerprint.

A run writes the listing (classes, class prompts, train images) when it first meets a dataset, so that the quality
measures need neither the data root nor the dataset options again. A huge train split is bounded by a seeded sample,
stratified by class, and the listing says so (ImageNet: MAX_POOL of its 1.28 M train images).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from ..datasets.manifest import DatasetManifest
from ..fingerprint import seed_from
from ..runner.workdir import WorkDir, write_json_atomic
from .sets import resolve, stored

MAX_POOL = 20_000  # train images compared with at most; more are sampled down to this, each class in proportion


def pool_path(workdir: WorkDir, dataset_fingerprint: str) -> Path:
    return workdir.root / "quality" / "pools" / f"{dataset_fingerprint}.json"


def sample_pool(manifest: DatasetManifest, max_pool: int = MAX_POOL) -> tuple[list, str]:
    """(samples, how they were chosen): all train images, or a seeded class-stratified sample of max_pool."""
    train = list(manifest.split("train"))
    if len(train) <= max_pool:
        return train, f"all {len(train)} train images"
    rng = random.Random(seed_from("quality-pool", manifest.fingerprint()))
    chosen = []
    for group in manifest.by_class("train"):
        group = sorted(group, key=lambda s: s.path)
        chosen += rng.sample(group, min(len(group), max(1, math.floor(max_pool * len(group) / len(train)))))
    return chosen, (f"a seeded sample of {len(chosen)} of the {len(train)} train images, each class in proportion "
                    f"(bounded at {max_pool})")


def save_real_pool(manifest: DatasetManifest, workdir: WorkDir, max_pool: int = MAX_POOL) -> Path:
    """Write the dataset's pool listing unless it is already there (its name is the dataset's fingerprint)."""
    path = pool_path(workdir, manifest.fingerprint())
    if path.exists():
        return path
    samples, rule = sample_pool(manifest, max_pool)
    write_json_atomic(path, {
        "dataset": manifest.key, "fingerprint": manifest.fingerprint(), "classes": list(manifest.classes),
        "prompts": [manifest.prompt(label) for label in range(len(manifest.classes))],
        "train_images": len(manifest.split("train")), "pool": rule,
        "samples": [[stored(workdir.root, s.path), s.label] for s in samples],
    })
    return path


def load_real_pool(workdir: WorkDir, dataset_fingerprint: str) -> dict | None:
    """The listing with absolute paths, or None when no run of this version has written it."""
    path = pool_path(workdir, dataset_fingerprint)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    data["samples"] = [(resolve(workdir.root, p), int(label)) for p, label in data["samples"]]
    return data
