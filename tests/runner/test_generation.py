"""A generated set made in blocks under claims: any spread of blocks over processes gives the same set, each image
is made once, a damaged image is found and made again, and the manifest ends with one line per image."""

import json
import logging
import threading
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
from PIL import Image

from datadream_bench.engine.manifest import MANIFEST, ManifestWriter, read_manifest, records
from datadream_bench.method import ImageRequest, Method
from datadream_bench.runner.generation import BLOCK, Engine, GeneratedSet


class SeedImages(Method):
    """Images that are a function of the seed alone: the set's bookkeeping is under test, not diffusion."""

    name = "seed-images"

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def sample(self, ctx, sampler, batch):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed mid-generation")
        self.calls.append([r.id for r in batch])
        return [Image.fromarray(np.random.default_rng(r.seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))
                for r in batch]

    @property
    def made(self):
        return [i for call in self.calls for i in call]


def requests(n_per_class=50, classes=3):
    return [ImageRequest(label, i, seed=1000 * label + i, prompt=f"class {label}")
            for label in range(classes) for i in range(n_per_class)]


def engine(batch_size=8):
    # SeedImages never uses the model; the engine still asks the sampler to apply each group's adapter (none here)
    no_model = SimpleNamespace(pipe=SimpleNamespace(unet=None, text_encoder=None),
                               adapted=lambda adapter: nullcontext())
    return lambda: Engine(sampler=no_model, load_adapter=lambda unit: None, image_filter=None,
                          candidate_seed=lambda r, attempt: r.seed, batch_size=batch_size)


def image_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted((folder / "images").rglob("*.png"))}


def test_blocks_cut_batches_and_the_manifest_is_merged_in_plan_order(tmp_path):
    reqs, method = requests(), SeedImages()
    images = GeneratedSet(tmp_path, reqs)
    assert [b.start for b in images.blocks] == [0, BLOCK, 2 * BLOCK] and len(reqs) == 150
    report = images.make(engine(batch_size=10), method)
    assert report.images == 150 and report.reused == 0
    assert all(len({reqs.index(next(r for r in reqs if r.id == i)) // BLOCK for i in call}) == 1
               for call in method.calls), "a batch crossed a block boundary"
    done = images.finish()
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r.id for r in reqs]
    assert set(done) == {r.id for r in reqs} and not list((tmp_path / "blocks").glob("*.jsonl"))
    assert all({"size", "sha256"} <= set(rec) for rec in done.values())


def test_a_sharded_set_equals_an_unsharded_one(tmp_path):
    reqs = requests()
    whole = GeneratedSet(tmp_path / "whole", reqs)
    whole.make(engine(), SeedImages())
    whole.finish()
    sharded = GeneratedSet(tmp_path / "sharded", reqs)
    first, second = SeedImages(), SeedImages()
    sharded.make(engine(), first, blocks=sharded.blocks[:1])
    GeneratedSet(tmp_path / "sharded", reqs).make(engine(), second, blocks=sharded.blocks[1:])  # another worker
    assert set(first.made).isdisjoint(second.made) and len(first.made) + len(second.made) == 150
    sharded.finish()
    assert image_bytes(tmp_path / "whole") == image_bytes(tmp_path / "sharded")
    strip = [{k: v for k, v in r.items()} for r in records(tmp_path / "whole" / MANIFEST)]
    assert strip == list(records(tmp_path / "sharded" / MANIFEST))


def test_two_makers_at_once_make_each_image_once(tmp_path):
    reqs = requests(n_per_class=100)  # 5 blocks
    makers = [SeedImages(), SeedImages()]
    threads = [threading.Thread(target=lambda m=m: GeneratedSet(tmp_path, reqs).make(engine(), m)) for m in makers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = makers[0].made + makers[1].made
    assert sorted(made) == sorted(r.id for r in reqs), "an image was made twice, or not at all"
    GeneratedSet(tmp_path, reqs).finish()
    assert len((tmp_path / MANIFEST).read_text().splitlines()) == 300
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.suffix == ".claim"]


def test_a_damaged_image_is_reported_and_made_again(tmp_path, caplog):
    reqs = requests()
    GeneratedSet(tmp_path, reqs).make(engine(), SeedImages())
    before = GeneratedSet(tmp_path, reqs).finish()
    cut, flipped = tmp_path / before[reqs[3].id]["file"], tmp_path / before[reqs[100].id]["file"]
    good = cut.read_bytes(), flipped.read_bytes()
    cut.write_bytes(good[0][: len(good[0]) // 2])
    flipped.write_bytes(good[1][:-1] + bytes([good[1][-1] ^ 1]))
    images = GeneratedSet(tmp_path, reqs)
    with caplog.at_level(logging.WARNING, logger="dd_bench"):
        assert sorted(images.missing(images.state()[0])) == sorted([reqs[3].id, reqs[100].id])
    assert str(cut) in caplog.text and str(flipped) in caplog.text
    again = SeedImages()
    report = images.make(engine(), again)
    assert sorted(again.made) == sorted([reqs[3].id, reqs[100].id]) and report.images == 2
    assert len(report.repaired) == 2
    images.finish()
    assert (cut.read_bytes(), flipped.read_bytes()) == good
    assert [json.loads(line)["id"] for line in (tmp_path / MANIFEST).read_text().splitlines()] == [r.id for r in reqs]


def test_a_torn_line_never_swallows_the_next_record(tmp_path):
    reqs = requests(n_per_class=10, classes=1)
    images = GeneratedSet(tmp_path, reqs)
    try:
        images.make(engine(batch_size=2), SeedImages(fail_after=2))
    except KeyboardInterrupt:
        pass
    piece = images.piece(images.blocks[0])
    with open(piece, "a") as f:
        f.write('{"id": "0000-000')  # the process died in the middle of a line
    ManifestWriter(piece).append([{"id": "x", "file": "x.png"}])
    assert [r["id"] for r in records(piece)][-1] == "x"
    assert all(line.startswith("{") and line.endswith("}") for line in piece.read_text().splitlines())
    survived = set(read_manifest(piece, root=tmp_path))
    assert len(survived) == 2  # the first batch; the second was in flight
    resumed = SeedImages()
    GeneratedSet(tmp_path, reqs).make(engine(batch_size=2), resumed)
    assert sorted(resumed.made) == sorted({r.id for r in reqs} - survived)
    assert set(GeneratedSet(tmp_path, reqs).finish()) == {r.id for r in reqs}
    assert len(read_manifest(tmp_path / MANIFEST)) == 10


def test_a_grid_s_sets_are_counted_from_the_work_dir_by_each_method_s_own_plan(tmp_path):
    from datadream_bench.runner.generation import count_sets, recorded_images
    from datadream_bench.runner.workdir import WorkDir
    from datadream_bench.testing import tiny_cells

    grid = tiny_cells(["da-fusion", "zero-shot-sd", "real-only"], tmp_path)  # both settings of each
    sets = count_sets(grid, WorkDir(tmp_path))
    assert len(sets) == 2  # a set shared by two settings is one set; real-only has none
    by_method = {s.folder.parts[-2]: s for s in sets}
    da_fusion = next(c for c in grid if c.spec.method == "da-fusion")
    # DA-Fusion makes images per real shot, not per class: the count is its own cost(), as `dd-bench plan` says
    assert by_method["da-fusion"].planned == 5 * 2 * da_fusion.method_config.images_per_shot
    assert by_method["zero-shot-sd"].planned == 5 * 4 and by_method["zero-shot-sd"].done == {}
    # Images recorded by a finished merge and by a block still in progress count; a torn line and rejections do not.
    folder = by_method["zero-shot-sd"].folder
    (folder / "blocks").mkdir(parents=True)
    line = lambda i: json.dumps({"id": f"{i:05d}", "file": f"{i:05d}.png"}) + "\n"  # noqa: E731
    (folder / MANIFEST).write_text(line(0) + line(1))
    (folder / "blocks" / "00000064.jsonl").write_text(line(64) + line(65)[:-9])
    rejected = {"id": "00066", "label": 1, "attempt": 0, "seed": 66, "filter_seconds": 0.1}  # as the filter logs it
    (folder / "blocks" / "00000064.rejections.jsonl").write_text(json.dumps(rejected) + "\n")
    assert recorded_images(folder) == 3
    (again,) = [s for s in count_sets(grid, WorkDir(tmp_path)) if s.folder == folder]
    assert sorted(again.done) == ["00000", "00001", "00064"]
