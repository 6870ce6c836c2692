"""The quality measures on feature matrices whose answers are known."""

import numpy as np
import pytest

from datadream_bench.quality import metrics


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_frechet_distance_is_zero_on_the_same_set_and_the_squared_shift_on_a_moved_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.full(8, 0.5)
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(8 * 0.25, rel=1e-6)
    # fewer images than dimensions (a singular covariance) still gives a finite number
    assert np.isfinite(metrics.frechet_distance(rng.normal(size=(5, 32)), rng.normal(size=(7, 32))))
    assert metrics.frechet_distance(a[:1], a) is None


def test_prdc_and_vendi(capsys):
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 6))
    same = metrics.prdc(real, real.copy())
    assert same["precision"] == pytest.approx(1.0) and same["coverage"] == pytest.approx(1.0)
    far = metrics.prdc(real, real + 100.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    assert capsys.readouterr().out == ""  # the library's own prints never reach stdout
    assert metrics.prdc(real[:3], real) is None
    assert metrics.vendi(np.ones((10, 4))) == pytest.approx(1.0)
    assert metrics.vendi(np.eye(5)) == pytest.approx(5.0)


def test_memorisation_counts_near_copies_of_the_shots():
    rng = np.random.default_rng(2)
    pool = unit(rng.normal(size=(100, 16)))
    shots = unit(rng.normal(size=(4, 16)))
    real = np.concatenate([pool, shots])
    is_shot = np.r_[np.zeros(100, bool), np.ones(4, bool)]
    labels = np.array([0, 0, 1, 1])
    per_class = [shots[:2], shots[2:]]
    copies = unit(shots + 0.01 * rng.normal(size=shots.shape))
    m = metrics.memorisation(copies, real, is_shot, labels, per_class)
    assert m["memorised"] == 1.0 and m["nearest_shot_cos"] > 0.99 and m["chance"] == pytest.approx(4 / 104)
    others = unit(pool[:4] + 0.01 * rng.normal(size=(4, 16)))  # near pool images, not shots
    m = metrics.memorisation(others, real, is_shot, labels, per_class)
    assert m["memorised"] == 0.0 and m["nearest_is_shot"] == 0.0
