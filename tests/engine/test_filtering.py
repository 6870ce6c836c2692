"""Filtering in the engine: a fixed candidate sequence per image slot, the retry cap, resume that keeps the same
accepted images, and the CLIP filter's rules."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from datadream_bench.engine.filter import ClipFilter
from datadream_bench.engine.generate import default_candidate_seed, generate
from datadream_bench.engine.manifest import read_manifest, read_rejections
from datadream_bench.engine.sampler import Sampler
from datadream_bench.errors import UsageError
from datadream_bench.method import ImageRequest, Method

CLASSES = ("zero", "one")


class SeedImages(Method):
    """Images that are a function of the seed alone (no diffusion: the engine's bookkeeping is under test)."""

    name = "seed-images"

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = [], fail_after

    def sample(self, ctx, sampler, batch):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed mid-generation")
        self.calls.append([(r.id, r.seed) for r in batch])
        return [Image.fromarray(np.random.default_rng(r.seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))
                for r in batch]

    @property
    def candidates(self):
        return [c for call in self.calls for c in call]


class SeedFilter:
    """Accepts a candidate when its seed is divisible by `every` (never when every is 0)."""

    def __init__(self, max_attempts, every, class_budget=None):
        self.max_attempts, self.every, self.judged = max_attempts, every, 0
        self.class_budget = class_budget

    def accept(self, requests, images):
        self.judged += len(requests)
        return [self.every > 0 and r.seed % self.every == 0 for r in requests]

    def describe(self):
        return {"kind": "seed", "every": self.every, "max_attempts": self.max_attempts}


def requests(n_per_class=3):
    return [ImageRequest(label, i, seed=1000 * label + i, prompt=f"a photo of a {CLASSES[label]}")
            for label in range(2) for i in range(n_per_class)]


def run(method, pipe, folder, image_filter, batch_size=3, reqs=None):
    return generate(method, Sampler(pipe, "cpu", torch.float32), reqs or requests(), folder, batch_size=batch_size,
                    load_adapter=lambda name: None, image_filter=image_filter, class_names=CLASSES)


def first_accepted(req, every, max_attempts):
    """Which candidate of a slot the engine must keep, walked here independently of the engine."""
    for attempt in range(max_attempts):
        seed = default_candidate_seed(req, attempt)
        if seed % every == 0:
            return attempt, seed, False
    return max_attempts - 1, seed, True


def test_the_retry_cap_is_honoured_and_the_last_candidate_is_forced(tiny_pipe, tmp_path):
    method, reject_all = SeedImages(), SeedFilter(max_attempts=4, every=0)
    report = run(method, tiny_pipe, tmp_path, reject_all)
    done = read_manifest(tmp_path / "manifest.jsonl")
    assert len(done) == 6 and len(method.candidates) == 6 * 4 == reject_all.judged
    for r in requests():
        rec = done[r.id]
        assert rec["forced"] and rec["attempt"] == 3 and rec["seed"] == default_candidate_seed(r, 3)
    rejected = read_rejections(tmp_path / "rejections.jsonl")
    assert {i: sorted(v) for i, v in rejected.items()} == {r.id: [0, 1, 2] for r in requests()}
    total = report.filter["total"]
    assert (total["candidates"], total["accepted"], total["rejected"], total["forced"]) == (24, 0, 18, 6)
    assert total["acceptance_rate"] == 0.0


def test_each_slot_keeps_its_first_accepted_candidate(tiny_pipe, tmp_path):
    keep_some = SeedFilter(max_attempts=6, every=3)
    report = run(SeedImages(), tiny_pipe, tmp_path, keep_some, batch_size=4)
    done = read_manifest(tmp_path / "manifest.jsonl")
    expected = {r.id: first_accepted(r, 3, 6) for r in requests()}
    assert {i: (rec["attempt"], rec["seed"], rec["forced"]) for i, rec in done.items()} == expected
    per_class = report.filter["per_class"]
    assert set(per_class) == set(CLASSES), "the report names classes, not label numbers"
    for label, name in enumerate(CLASSES):
        slots = [v for i, v in expected.items() if i.startswith(f"{label:04d}-")]
        candidates = sum(a + 1 for a, _, _ in slots)
        accepted = sum(not forced for _, _, forced in slots)
        assert per_class[name]["candidates"] == candidates
        assert per_class[name]["acceptance_rate"] == round(accepted / candidates, 4)
        assert per_class[name]["filter_seconds"] >= 0
    json.dumps(asdict(report))  # the runner stores the report in the cell record as JSON


def test_an_interrupted_run_keeps_the_same_images_as_an_unbroken_one(tiny_pipe, tmp_path):
    unbroken = tmp_path / "unbroken"
    run(SeedImages(), tiny_pipe, unbroken, SeedFilter(6, 3), batch_size=2)
    broken = tmp_path / "broken"
    first = SeedImages(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        run(first, tiny_pipe, broken, SeedFilter(6, 3), batch_size=2)
    rejected_before = read_rejections(broken / "rejections.jsonl")
    assert rejected_before, "the interruption should come after some rejections"
    resumed = SeedImages()
    run(resumed, tiny_pipe, broken, SeedFilter(6, 3), batch_size=5)
    redone = {(i, s) for i, s in resumed.candidates} & {(i, s) for i, s in first.candidates}
    logged = {(i, rec["seed"]) for i, attempts in rejected_before.items() for rec in attempts.values()}
    assert not redone & logged, "a logged rejection was sampled again"
    a, b = read_manifest(unbroken / "manifest.jsonl"), read_manifest(broken / "manifest.jsonl")
    assert set(a) == set(b) == {r.id for r in requests()}
    for image_id in a:
        assert (a[image_id]["seed"], a[image_id]["attempt"]) == (b[image_id]["seed"], b[image_id]["attempt"])
        assert np.array_equal(np.asarray(Image.open(unbroken / a[image_id]["file"])),
                              np.asarray(Image.open(broken / b[image_id]["file"])))


@pytest.mark.parametrize("fail_after", [1, 2, 3, 5])
def test_a_resumed_run_forms_the_batches_the_unbroken_run_formed(tiny_pipe, tmp_path, fail_after):
    # A batch's make-up decides which CPU kernels run, and so the last grey level of a pixel (test_generate): a rerun
    # that forms the lost batches again, slot for slot and candidate for candidate, is byte-identical at any size.
    reqs = requests(5)
    unbroken = SeedImages()
    run(unbroken, tiny_pipe, tmp_path / "unbroken", SeedFilter(6, 3), batch_size=3, reqs=reqs)
    sampled = [i for call in unbroken.calls for i, _ in call]
    assert len(unbroken.calls) > fail_after + 1 and len(sampled) > len(set(sampled))  # retries mixed into batches
    first = SeedImages(fail_after=fail_after)
    with pytest.raises(KeyboardInterrupt):
        run(first, tiny_pipe, tmp_path / "broken", SeedFilter(6, 3), batch_size=3, reqs=reqs)
    assert first.calls == unbroken.calls[:fail_after]
    resumed = SeedImages()
    run(resumed, tiny_pipe, tmp_path / "broken", SeedFilter(6, 3), batch_size=3, reqs=reqs)
    # Killed while sampling batch fail_after + 1, with batch fail_after still in flight: both are lost, nothing else.
    assert resumed.calls == unbroken.calls[fail_after - 1:]
    assert kept(tmp_path / "broken") == kept(tmp_path / "unbroken")


def class_timeout_walk(reqs, every, budget):
    """What the per-class timeout must keep, walked here independently of the engine: each class's candidates in
    rounds (attempt 0 of every slot, then attempt 1 of the rejected ones, ...); once the class has judged `budget`
    candidates, every further one is kept."""
    out = {}
    for label in sorted({r.label for r in reqs}):
        pending, attempt, spent = [r for r in reqs if r.label == label], 0, 0
        while pending:
            still = []
            for r in pending:
                seed = default_candidate_seed(r, attempt)
                ok = every > 0 and seed % every == 0
                if ok or spent >= budget:
                    out[r.id] = (attempt, seed, not ok)
                else:
                    still.append(r)
                spent += 1
            pending, attempt = still, attempt + 1
    return out


def kept(folder):
    return {i: (rec["attempt"], rec["seed"], rec["forced"]) for i, rec in read_manifest(folder / "manifest.jsonl").items()}


def test_the_class_timeout_keeps_every_candidate_once_the_class_spent_its_budget(tiny_pipe, tmp_path):
    reqs = requests(3)
    reject_all = SeedFilter(max_attempts=100, every=0, class_budget=7)
    report = run(SeedImages(), tiny_pipe, tmp_path, reject_all, reqs=reqs)
    # Per class: rounds 0 and 1 judge 6 candidates, round 2 judges the 7th (rejected), then the budget is spent:
    # the next two slots are kept at attempt 2, and the first slot's attempt 3 after them.
    assert kept(tmp_path) == class_timeout_walk(reqs, 0, 7)
    assert [kept(tmp_path)[f"0000-0000{i}"][0] for i in range(3)] == [3, 2, 2]
    assert report.filter["total"]["candidates"] == 2 * (7 + 3) == reject_all.judged
    assert report.filter["settings"]["max_attempts"] == 100


@pytest.mark.parametrize("every, budget", [(3, 4), (5, 9), (2, 1)])
def test_the_class_timeout_does_not_depend_on_batching_or_interruptions(tiny_pipe, tmp_path, every, budget):
    reqs = requests(5)
    expected = class_timeout_walk(reqs, every, budget)
    for batch_size in (1, 2, 7):
        folder = tmp_path / f"batch{batch_size}"
        run(SeedImages(), tiny_pipe, folder, SeedFilter(100, every, budget), batch_size=batch_size, reqs=reqs)
        assert kept(folder) == expected, batch_size
    for fail_after in (1, 3):  # 10 slots in batches of 3: at least 4 sampler calls
        broken = tmp_path / f"broken{fail_after}"
        with pytest.raises(KeyboardInterrupt):
            run(SeedImages(fail_after=fail_after), tiny_pipe, broken, SeedFilter(100, every, budget), batch_size=3,
                reqs=reqs)
        run(SeedImages(), tiny_pipe, broken, SeedFilter(100, every, budget), batch_size=2, reqs=reqs)
        assert kept(broken) == expected, fail_after


def test_a_class_handed_over_in_blocks_spends_its_budget_in_shares(tiny_pipe, tmp_path):
    # The runner hands the engine blocks of consecutive images; a block with half of a class's 6 images spends half
    # of the class's budget of 8, among its own candidates.
    reqs = requests(6)
    halves = [[r for r in reqs if r.index < 3], [r for r in reqs if r.index >= 3]]
    piece_filter = SeedFilter(100, 0, class_budget=8)
    piece_filter.class_size = 6
    for half in halves:
        run(SeedImages(), tiny_pipe, tmp_path / "blocks", piece_filter, reqs=half)
    expected = {**class_timeout_walk(halves[0], 0, 4), **class_timeout_walk(halves[1], 0, 4)}
    assert kept(tmp_path / "blocks") == expected
    assert piece_filter.judged == 4 * (4 + 3)  # 2 classes x 2 halves, each its 4 candidates then 3 kept


@pytest.fixture(scope="module")
def tiny_filter():
    from datadream_bench.models.tiny import byte_tokenizer, tiny_clip

    model, tokenizer = tiny_clip(0)
    texts = ["a photo of a digit zero", "a photo of a digit one", "a photo of a digit two"]
    f = ClipFilter(model.eval(), texts, 32, rule="argmax", max_attempts=5)
    f.text_features(byte_tokenizer())
    return f


def test_clip_filter_keeps_only_images_whose_argmax_is_their_class(tiny_filter):
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(6)]
    probs = tiny_filter.probabilities(images)
    assert torch.allclose(probs.sum(-1), torch.ones(6), atol=1e-5)
    top, bottom = probs.argmax(-1).tolist(), probs.argmin(-1).tolist()
    as_top = [ImageRequest(c, i, 0, "") for i, c in enumerate(top)]
    as_bottom = [ImageRequest(c, i, 0, "") for i, c in enumerate(bottom)]
    assert tiny_filter.accept(as_top, images) == [True] * 6
    assert tiny_filter.accept(as_bottom, images) == [False] * 6
    chance = ClipFilter(tiny_filter.model, tiny_filter.texts, 32, rule="above-chance")
    chance._text_features = tiny_filter._text_features
    for label in range(3):
        reqs = [ImageRequest(label, i, 0, "") for i in range(6)]
        assert chance.accept(reqs, images) == (probs[:, label] > 1 / 3).tolist()


def test_clip_filter_settings_are_checked():
    with pytest.raises(UsageError, match="rule"):
        ClipFilter(torch.nn.Identity(), ["a"], 32, rule="top-5")
    with pytest.raises(UsageError, match="max_attempts"):
        ClipFilter(torch.nn.Identity(), ["a"], 32, max_attempts=0)
