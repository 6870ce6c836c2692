import threading

import numpy as np
import pytest
import torch
from PIL import Image

from datadream_bench.classifier import data
from datadream_bench.datasets.manifest import Sample
from datadream_bench.errors import UsageError


def _png(path, w, h, seed=0):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return Image.fromarray(arr)


def test_decode_square_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    img = _png(tmp_path / "a.png", 60, 40)
    out = data.decode_square(str(tmp_path / "a.png"), 20)
    assert out.shape == (3, 20, 20) and out.dtype == np.uint8
    ref = np.asarray(img.resize((30, 20), Image.BICUBIC).crop((5, 0, 25, 20))).transpose(2, 0, 1)
    assert np.array_equal(out, ref)


def test_decode_all_in_memory_and_cached(tmp_path):
    paths = [str(tmp_path / f"{i}.png") for i in range(5)]
    for i, p in enumerate(paths):
        _png(p, 24, 24, seed=i)
    memory = data.decode_all(paths, 16, workers=2)
    assert memory.shape == (5, 3, 16, 16) and memory.dtype == torch.uint8
    cached = data.decode_all(paths, 16, workers=2, cache_dir=tmp_path / "cache")
    assert torch.equal(memory, cached)
    files = sorted(f.name for f in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and files[0].endswith(".done") and files[1].endswith(".npy")
    again = data.decode_all(paths, 16, workers=2, cache_dir=tmp_path / "cache")
    assert torch.equal(memory, again)
    # Another size is another cache entry.
    data.decode_all(paths, 8, workers=2, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_decode_all_of_nothing_is_empty(tmp_path):
    assert data.decode_all([], 8, cache_dir=tmp_path).shape == (0, 3, 8, 8)


def test_decode_all_names_a_bad_or_missing_file(tmp_path):
    good = tmp_path / "good.png"
    _png(good, 8, 8)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(UsageError, match="bad.png"):
        data.decode_all([str(good), str(bad)], 8, what="training image")
    with pytest.raises(UsageError, match="missing.png"):
        data.decode_all([str(good), str(tmp_path / "missing.png")], 8)


def test_plan_rows_repeats_real_shots_to_the_synthetic_count():
    synthetic = [Sample(f"s{c}-{i}", c) for c in range(2) for i in range(10)]
    real = [Sample(f"r{c}-{i}", c) for c in range(2) for i in range(3)]
    paths, rows = data.plan_rows(synthetic, real, 2, repeats=lambda shots, syn: syn // shots)
    assert len(paths) == 26  # each file decoded once
    real_rows = [r for r in rows if r[2]]
    assert len(real_rows) == 2 * 3 * 3  # 10 // 3 = 3 repeats per class
    assert sum(1 for r in rows if not r[2]) == 20
    assert all(paths[i].startswith("r") for i, _, is_real in rows if is_real)
    assert {label for _, label, is_real in rows if is_real} == {0, 1}
    _, rows = data.plan_rows([], real, 2)
    assert len(rows) == 6 and all(r[2] for r in rows)


def test_trainset_batch_gathers_rows():
    images = torch.arange(3).view(3, 1, 1, 1).expand(3, 3, 2, 2).to(torch.uint8)
    ts = data.TrainSet(images, torch.tensor([0, 2, 2, 1]), torch.tensor([5, 6, 7, 8]),
                       torch.tensor([False, True, True, False]))
    x, labels, real = ts.batch(torch.tensor([1, 3]))
    assert x[:, 0, 0, 0].tolist() == [2, 1] and labels.tolist() == [6, 8] and real.tolist() == [True, False]


def test_epoch_order_is_a_seeded_permutation():
    a, b = data.epoch_order(50, 3), data.epoch_order(50, 3)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, data.epoch_order(50, 4))
    assert [len(x) for x in data.batch_indices(a, 16)] == [16, 16, 16, 2]


def test_prefetched_keeps_order_runs_ahead_and_raises():
    threads = set()

    def work(i):
        threads.add(threading.get_ident())
        return i * i

    assert list(data.prefetched(work, range(7), depth=2)) == [i * i for i in range(7)]
    assert threading.get_ident() not in threads
    assert list(data.prefetched(work, range(3), depth=0)) == [0, 1, 4]

    def fail(i):
        if i == 2:
            raise RuntimeError("boom")
        return i

    with pytest.raises(RuntimeError, match="boom"):
        list(data.prefetched(fail, range(5), depth=2))
