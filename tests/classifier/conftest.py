"""Fixtures for the classifier tests: the demo digits trimmed to a few images per split, and tiny-CLIP jobs."""

from __future__ import annotations

import dataclasses

import pytest

from datadream_bench.classifier.base import TrainJob
from datadream_bench.classifier.clip_lora import ClipLora, Config
from datadream_bench.datasets.demo import demo_dataset
from datadream_bench.datasets.fewshot import draw_few_shot

PER_CLASS = {"train": 12, "val": 6, "test": 6}


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """The demo digits with a handful of images per class and split (few enough to train and evaluate in seconds)."""
    full = demo_dataset(tmp_path_factory.mktemp("digits"))
    splits = {}
    for name, n in PER_CLASS.items():
        splits[name] = tuple(s for group in full.by_class(name) for s in group[:n])
    return dataclasses.replace(full, splits=splits, meta={})


@pytest.fixture(scope="session")
def fewshot(digits):
    return draw_few_shot(digits, seed=0, k=2)


@pytest.fixture(scope="session")
def synthetic(digits, fewshot):
    """Stand-ins for generated images: train-pool images outside the few-shot draw."""
    shots = {s.path for s in fewshot.samples}
    return [s for s in digits.split("train") if s.path not in shots]


# Small and quick; a large step so that a few steps visibly move the tiny model. The step budget is the paper's rule
# at the fixture's 10 synthetic images per class: 2 epochs of ceil(10 x 5 / 8) = 7 steps.
TEST_CONFIG = dict(epochs=2, budget_images_per_class=10, batch_size=8, warmup_epochs=0.5, lr=3e-3, eval_every=1,
                   eval_batch_size=64, workers=2, prefetch=1)


@pytest.fixture
def make_job(digits, fewshot, synthetic):
    def make(setting="synthetic", dataset=None, synthetic_images=None, seed=0, **config):
        return TrainJob(
            dataset=dataset or digits,
            fewshot=fewshot,
            synthetic=list(synthetic if synthetic_images is None else synthetic_images),
            setting=setting,
            config=Config(**{**TEST_CONFIG, **config}),
            clip_model="tiny:0",
            seed=seed,
            device="cpu",
        )

    return make


@pytest.fixture(scope="session")
def classifier():
    return ClipLora()

