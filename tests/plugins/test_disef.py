"""DISEF-style: captions once per shot in the adapt stage, seeded caption order, img2img with DPM-Solver++ and a CLIP
filter, and missing models found before any work."""

import dataclasses
from pathlib import Path

import pytest

from datadream_bench import api
from datadream_bench.errors import ModelNotFoundError, UsageError
from datadream_bench.models.loading import load_seconds
from datadream_bench.runner.stages import adapt
from datadream_bench.testing import check_method, tiny_cells
from dd_bench_disef.config import DisefConfig
from dd_bench_disef.method import Disef

D = Disef()


class CountingCaptioner(api.Captioner):
    name = "counting"

    def __init__(self):
        self.seen = []

    def caption(self, images, class_name, *, source="", device="cpu"):
        out = []
        for img in images:
            self.seen.append(img.tobytes())
            out.append(f"{class_name} number {len(self.seen)}")
        return out


@pytest.fixture
def counting(monkeypatch):
    captioner = CountingCaptioner()
    real = api.get_captioner
    monkeypatch.setattr(api, "get_captioner", lambda name: captioner if name == "counting" else real(name))
    return captioner


def test_defaults_are_the_published_ones():
    c = DisefConfig()
    assert (c.images_per_class, c.num_inference_steps, c.strength, c.guidance_scale, c.scheduler, c.batch_size,
            c.filter_max_attempts, c.init_fit, c.clip_filter) == (64, 20, 0.75, 8.0, "dpm-solver++", 8, 100, "pad",
                                                                  True)
    # The original's give-up rule: per class, after more than 100 batch cycles of 8 candidates.
    assert (c.filter_timeout, c.filter_class_budget) == ("class", 800)
    for values in D.profile_defaults.values():
        DisefConfig(**values)


def test_captions_are_made_once_per_shot_and_reused(make_ctx, counting, tmp_path):
    ctx = make_ctx(D, shots=3, captioner="counting", images_per_class=7)
    _, made = adapt(D, ctx, tmp_path)
    shots = [s for group in ctx.fewshot.shots for s in group]
    assert made == len(ctx.dataset.classes) and len(counting.seen) == len(shots)
    assert len(set(counting.seen)) == len(shots), "each shot is captioned once, none twice"
    again = make_ctx(D, shots=3, captioner="counting", images_per_class=7)
    _, made = adapt(D, again, tmp_path)
    assert made == 0 and len(counting.seen) == len(shots), "a rerun reads the captions from the adapt artifact"
    assert again.adaptations == ctx.adaptations
    requests = D.plan(again)
    for label, group in enumerate(again.fewshot.shots):
        mine = [r for r in requests if r.label == label]
        captions = again.adaptations[f"class-{label:04d}"].data["captions"]
        assert {r.prompt for r in mine} == set(captions)
        assert [r.init_image for r in mine] == [group[i % 3].path for i in range(7)]
        assert [r.prompt for r in mine[:3]] == [r.prompt for r in mine[3:6]]
    assert [r.prompt for r in requests] == [r.prompt for r in D.plan(again)]


def test_captions_are_checked_against_the_shots_by_content_not_path(make_ctx, counting, tmp_path):
    ctx = make_ctx(D, shots=2, captioner="counting")
    adapt(D, ctx, tmp_path / "adapt")
    # The same files under another spelling of the data root (a link to it, as another --data-root would be).
    root = Path(ctx.fewshot.shots[0][0].path).parent.parent
    (tmp_path / "alias").symlink_to(root, target_is_directory=True)

    def respelled(s):
        return api.Sample(str(tmp_path / "alias" / Path(s.path).relative_to(root)), s.label)

    again = make_ctx(D, shots=2, captioner="counting")
    again.fewshot = dataclasses.replace(again.fewshot, shots=tuple(tuple(respelled(s) for s in group)
                                                                   for group in again.fewshot.shots))
    assert again.fewshot.shots[0][0].path != ctx.fewshot.shots[0][0].path
    _, made = adapt(D, again, tmp_path / "adapt")
    assert made == 0
    assert [r.prompt for r in D.plan(again)] == [r.prompt for r in D.plan(ctx)]
    other = make_ctx(D, shots=2, seed=1, captioner="counting")  # other shots, read against those captions
    adapt(D, other, tmp_path / "adapt")
    with pytest.raises(RuntimeError, match="made for other shots"):
        D.plan(other)


def test_caption_order_is_a_seeded_shuffle(make_ctx, counting, tmp_path):
    orders = []
    for seed in range(6):
        ctx = make_ctx(D, shots=4, seed=seed, captioner="counting", images_per_class=4)
        adapt(D, ctx, tmp_path / str(seed))
        captions = ctx.adaptations["class-0000"].data["captions"]
        orders.append(tuple(captions.index(r.prompt) for r in D.plan(ctx) if r.label == 0))
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert len(set(orders)) > 1, "the caption order should depend on the seed"


def test_template_captioner_and_sample_settings(make_ctx, recording_sampler, tmp_path):
    ctx = make_ctx(D, shots=2)
    adapt(D, ctx, tmp_path)
    requests = D.plan(ctx)
    assert {r.prompt for r in requests if r.label == 1} == {f"a photo of a {ctx.dataset.classes[1]}."}

    sampler = recording_sampler()
    D.sample(ctx, sampler, requests[:2])
    assert sampler.calls == [{"strength": 0.75, "num_inference_steps": ctx.config.num_inference_steps,
                              "guidance_scale": 8.0, "scheduler": "dpm-solver++", "fit": "pad"}]


def test_missing_captioner_or_filter_model_fails_before_any_work(tmp_path):
    with pytest.raises(ModelNotFoundError, match="captioner_model"):
        tiny_cells(["disef"], tmp_path, overrides={"captioner": "blip", "captioner_model": str(tmp_path / "no-blip")})
    with pytest.raises(ModelNotFoundError, match="filter_model"):
        tiny_cells(["disef"], tmp_path, overrides={"filter_model": str(tmp_path / "no-clip")})
    with pytest.raises(UsageError, match="unknown captioner 'llava-9'.*template"):
        tiny_cells(["disef"], tmp_path, overrides={"captioner": "llava-9"})
    assert not (tmp_path / "adapt").exists() and not (tmp_path / "generated").exists()
    cells = tiny_cells(["disef"], tmp_path, overrides={"clip_filter": False})
    assert all("models" not in c.spec.inputs for c in cells)


def test_check_method(tmp_path):
    records = check_method("disef", tmp_path)
    assert len(records) == 2
    generation = records[0]["generation"]
    assert records[1]["reused"]["images"] == generation["images"] == 4 * 5, "the second setting reuses the images"
    report = generation["filter"]
    assert report["settings"]["rule"] == "argmax"
    assert (report["settings"]["timeout"], report["settings"]["class_budget"]) == ("class", 8)
    assert report["total"]["candidates"] == report["total"]["accepted"] + report["total"]["rejected"] + \
        report["total"]["forced"]
    assert all(0.0 <= row["acceptance_rate"] <= 1.0 for row in report["per_class"].values())
    assert records[0]["spec"]["inputs"]["models"]["filter_model"] == records[0]["spec"]["inputs"]["clip"]


def save_tiny_blip(folder):
    """A BLIP captioner with random weights and a 17-word vocabulary, saved as a local folder (never downloaded)."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "photo", "of", "digit", "zero", "one",
             "two", "three", "four", ",", "."]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    torch.manual_seed(0)
    text = dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=64, bos_token_id=5, sep_token_id=3, pad_token_id=0, encoder_hidden_size=32)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32)).save_pretrained(
        folder, safe_serialization=True)
    BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]").save_pretrained(folder)
    BlipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_blip_captioner_from_a_local_folder(make_ctx, tmp_path):
    blip = save_tiny_blip(tmp_path / "blip")
    cells = tiny_cells(["disef"], tmp_path / "work", settings=["synthetic"],
                       overrides={"captioner": "blip", "captioner_model": str(blip)})
    assert set(cells[0].spec.inputs["models"]) == {"captioner_model", "filter_model"}
    ctx = make_ctx(D, shots=2, captioner="blip", captioner_model=str(blip))
    loaded = load_seconds()
    adapt(D, ctx, tmp_path / "adapt")
    assert load_seconds() > loaded  # BLIP's load counts as model loading in the cell's record, not as adapt compute
    for label, name in enumerate(ctx.dataset.classes):
        captions = ctx.adaptations[f"class-{label:04d}"].data["captions"]
        assert len(captions) == 2 and all(c.startswith(f"a photo of a {name}") for c in captions)
