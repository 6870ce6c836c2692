"""The classifier's budget: the same optimizer steps for every method's data, counted as the reference counts them."""

import pytest
import torch

from datadream_bench.classifier.clip_lora import Config
from datadream_bench.classifier.schedule import batches, real_repeats, schedule


@pytest.mark.parametrize("rows", [10 * 500, 10 * 64, 10 * 800, 160 * 31, 1])
def test_step_budget_is_the_references_at_500_per_class_whatever_the_rows(rows):
    s = schedule(Config(), rows, 10, "synthetic", 16)  # EuroSAT: 60 x ceil(500 x 10 / 256) = 60 x 20
    assert (s.steps, s.unit, s.warmup) == (1200, 20, 120)
    assert s.evals == tuple(range(100, 1200, 100)) + (1200,)  # every 5 reference epochs, and the last step
    assert s.rows_seen == 1200 * 256
    assert schedule(Config(), rows, 10, "real", 16).steps == 1200  # 31 x 16 = 496 rows per class
    assert schedule(Config(), rows, 10, "synthetic+real", 16).steps == 60 * 39  # 500 + 496 rows per class


def test_epoch_budget_scales_with_the_rows():
    epochs = Config(budget="epochs")
    assert schedule(epochs, 10 * 500, 10, "synthetic", 16).steps == 1200  # the reference's own run
    assert schedule(epochs, 10 * 64, 10, "synthetic", 16).steps == 60 * 3  # DISEF's 64 per class
    assert schedule(epochs, 10 * 800, 10, "synthetic", 16).steps == 60 * 32  # IsSynth's 800 per class
    assert schedule(epochs, 10 * 64, 10, "synthetic", 16).rows_seen == 60 * 640
    assert schedule(Config(steps=300), 10 * 64, 10, "synthetic", 16).steps == 300


def test_real_shots_are_repeated_as_the_reference_repeats_them():
    assert real_repeats("real", 16, 0, 500) == 31  # 500 // 16: real-only trains on about the budget's count
    assert real_repeats("synthetic+real", 16, 64, 500) == 4  # to the method's own synthetic count
    assert real_repeats("synthetic+real", 16, 8, 500) == 1  # at least once
    assert real_repeats("real", 0, 0, 500) == 0


def test_a_step_budget_cuts_full_batches_from_shuffled_passes():
    s = schedule(Config(budget_images_per_class=5, epochs=3, batch_size=4), 6, 2, "synthetic", 1)
    out = list(batches(s, seed=0))
    assert len(out) == s.steps == 3 * 3 and all(len(b) == 4 for b in out)
    flat = torch.cat(out)
    for p in range(len(flat) // 6):  # each pass is a permutation of the rows
        assert sorted(flat[6 * p:6 * p + 6].tolist()) == list(range(6))
    assert [b.tolist() for b in batches(s, seed=0)] == [b.tolist() for b in out]  # a pure function of the seed
    assert [b.tolist() for b in batches(s, seed=1)] != [b.tolist() for b in out]


def test_an_epoch_budget_passes_over_the_rows_with_a_last_partial_batch():
    s = schedule(Config(budget="epochs", epochs=2, batch_size=4), 6, 2, "synthetic", 1)
    assert [len(b) for b in batches(s, seed=0)] == [4, 2, 4, 2]
