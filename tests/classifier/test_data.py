import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datadream_bench.classifier import augment, cache, data
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


def test_decode_full_keeps_the_whole_frame_and_never_enlarges(tmp_path):
    img = _png(tmp_path / "a.png", 60, 40)
    out = data.decode_full(str(tmp_path / "a.png"), 20)
    assert out.shape == (3, 20, 30)  # shorter side down to 20, the aspect ratio kept, nothing cut
    assert np.array_equal(out, np.asarray(img.resize((30, 20), Image.BICUBIC)).transpose(2, 0, 1))
    native = data.decode_full(str(tmp_path / "a.png"), 448)
    assert np.array_equal(native, np.asarray(img).transpose(2, 0, 1))  # smaller than the cap: as the file is
    assert data.full_size(512, 512, 448) == (448, 448) and data.full_size(500, 375, 448) == (500, 375)


def test_a_cached_set_is_the_same_as_a_decoded_one_and_reused(tmp_path):
    paths = [str(tmp_path / f"{i}.png") for i in range(5)]
    for i, p in enumerate(paths):
        _png(p, 24 + 4 * i, 20, seed=i)
    memory = data.decode_images(paths, 16, square=False, workers=2)
    assert [tuple(x.shape) for x in memory.get(range(5))] == [(3, 16, 19), (3, 16, 22), (3, 16, 26), (3, 16, 29),
                                                                (3, 16, 32)]
    cached = data.decode_images(paths, 16, square=False, workers=2, cache_dir=tmp_path / "cache")
    assert cached.info["where"] == "disk" and cached.info["cache"] == "made"
    assert all(torch.equal(a, b) for a, b in zip(memory.get(range(5)), cached.get(range(5))))
    assert sorted(f.suffix for f in (tmp_path / "cache").iterdir()) == [".json", ".u8"]
    again = data.decode_images(paths, 16, square=False, workers=2, cache_dir=tmp_path / "cache")
    assert again.info["cache"] == "reused"
    assert all(torch.equal(a, b) for a, b in zip(memory.get(range(5)), again.get(range(5))))
    got = again.get([2])[0]
    got += 1  # batches are copies: the cache itself is read-only
    assert torch.equal(again.get([2])[0], memory.get([2])[0])
    # Another size or view is another entry.
    data.decode_images(paths, 8, square=True, workers=2, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 4


@pytest.mark.parametrize("damage", ["truncate", "invert"])
def test_a_damaged_cache_is_found_reported_and_made_again(tmp_path, damage, caplog):
    paths = [str(tmp_path / f"{i}.png") for i in range(4)]
    for i, p in enumerate(paths):
        _png(p, 20, 20, seed=i)
    expected = data.decode_images(paths, 16, square=False).get(range(4))
    data.decode_images(paths, 16, square=False, cache_dir=tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.u8")
    raw = entry.read_bytes()
    if damage == "truncate":  # half the file gone
        entry.write_bytes(raw[: len(raw) // 2])
    else:  # every byte inverted, size and modification time as they were
        st = entry.stat()
        entry.write_bytes(bytes(255 - b for b in raw))
        os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns))
        cache._VERIFIED.clear()  # as a new process finds it
    redone = data.decode_images(paths, 16, square=False, cache_dir=tmp_path / "cache")
    assert redone.info["cache"].startswith("made again: " + entry.name)
    assert ("bytes, its record says" if damage == "truncate" else "digest") in redone.info["cache"]
    assert any("made again" in r.getMessage() for r in caplog.records)
    assert all(torch.equal(a, b) for a, b in zip(expected, redone.get(range(4))))
    assert entry.read_bytes() == raw


def test_a_full_disk_is_an_error_naming_the_folder_and_leaves_no_temporary(tmp_path, monkeypatch):
    paths = [str(tmp_path / "a.png")]
    _png(paths[0], 20, 20)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    folder = tmp_path / "work" / "cache"
    with pytest.raises(OSError, match=f"no space left in {folder}") as e:
        data.decode_images(paths, 16, square=False, cache_dir=folder)
    assert e.value.errno == errno.ENOSPC
    assert list(folder.iterdir()) == []


def test_a_set_over_the_bound_is_decoded_per_batch_and_old_sets_make_room(tmp_path):
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    for i, p in enumerate(paths):
        _png(p, 20, 20, seed=i)
    one = 3 * 16 * 16  # bytes of one image at 16 px
    folder = tmp_path / "cache"
    streamed = data.decode_images(paths, 16, square=False, cache_dir=folder, limit=2 * one)
    assert streamed.info["where"] == "decoded per batch" and "does not fit" in streamed.info["cache"]
    assert all(torch.equal(a, b) for a, b in zip(streamed.get([2, 0]),
                                                 data.decode_images(paths, 16, square=False).get([2, 0])))
    assert not list(folder.glob("*.u8"))
    first = data.decode_images(paths[:1], 16, square=False, cache_dir=folder, limit=2 * one)
    time.sleep(0.01)
    data.decode_images(paths[1:2], 16, square=False, cache_dir=folder, limit=2 * one)
    time.sleep(0.01)
    data.decode_images(paths[:1], 16, square=False, cache_dir=folder, limit=2 * one)  # used again: newest
    time.sleep(0.01)
    data.decode_images(paths[2:], 16, square=False, cache_dir=folder, limit=2 * one)  # the second set goes
    assert len(list(folder.glob("*.u8"))) == 2
    assert data.decode_images(paths[:1], 16, square=False, cache_dir=folder).info["cache"] == "reused"
    assert Path(first.info["file"]).exists()


def test_temporaries_of_dead_writers_and_old_entries_are_removed(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = cache._host()
    stale = [folder / f"images-a.u8.tmp-{host}-{dead.pid}-0a1b2c3d", folder / f"images-256-abc.tmp-{dead.pid}.npy"]
    kept = [folder / f"images-b.u8.tmp-{host}-{os.getppid()}-0a1b2c3d",  # a live writer
            folder / f"images-c.u8.tmp-otherhost-{dead.pid}-0a1b2c3d"]  # another machine's: not ours to judge
    for p in stale + kept:
        p.write_bytes(b"x")
    removed = cache.remove_stale_temporaries(folder)
    assert sorted(removed) == sorted(stale) and all(p.exists() for p in kept)
    old_format = [folder / "images-256-abc.npy", folder / "images-256-abc.done"]
    for p in old_format:
        p.write_bytes(b"x")
    cache.Cache(folder, None)  # opening the folder also clears entries of the first format
    assert not any(p.exists() for p in old_format) and all(p.exists() for p in kept)


def test_crops_reach_the_image_border(tmp_path):
    # A wide image, red in its left eighth, blue in its right eighth: a centre square of it would hold neither.
    arr = np.zeros((32, 128, 3), np.uint8)
    arr[:, :, 1] = 255
    arr[:, :16] = (255, 0, 0)
    arr[:, -16:] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "wide.png")
    images = data.decode_images([str(tmp_path / "wide.png")], 448, square=False, cache_dir=tmp_path / "cache")
    ts = data.TrainSet(images, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long),
                       torch.zeros(64, dtype=torch.bool))
    seen = set()
    for step in range(4):
        batch, _, _ = ts.batch(torch.arange(16 * step, 16 * step + 16))
        x = augment.train_transform(batch, 16, torch.Generator().manual_seed(step), "crop-flip")
        pixels = x * torch.tensor(augment.CLIP_STD).view(1, 3, 1, 1) + torch.tensor(augment.CLIP_MEAN).view(1, 3, 1, 1)
        red = (pixels[:, 0] > 0.9) & (pixels[:, 1] < 0.1)
        blue = (pixels[:, 2] > 0.9) & (pixels[:, 1] < 0.1)
        seen |= {"red"} if red.any() else set()
        seen |= {"blue"} if blue.any() else set()
    assert seen == {"red", "blue"}


def test_decode_all_of_nothing_is_empty(tmp_path):
    assert data.decode_all([], 8, cache_dir=tmp_path).shape == (0, 3, 8, 8)
    assert len(data.decode_images([], 8, square=False, cache_dir=tmp_path)) == 0


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


def test_trainset_batch_of_a_decoded_set_is_a_list_of_its_images(tmp_path):
    paths = [str(tmp_path / f"{i}.png") for i in range(2)]
    _png(paths[0], 20, 10)
    _png(paths[1], 10, 20, seed=1)
    images = data.Images.concat([data.decode_images(paths[:1], 64, square=False),
                                 data.decode_images(paths[1:], 64, square=False)])
    ts = data.TrainSet(images, torch.tensor([1, 0, 1]), torch.tensor([4, 5, 6]), torch.tensor([True, False, True]))
    x, labels, real = ts.batch(torch.tensor([2, 1]))
    assert [tuple(t.shape) for t in x] == [(3, 20, 10), (3, 10, 20)] and labels.tolist() == [6, 5]


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
