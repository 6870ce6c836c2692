"""IsSynth-style real guidance: strength by shot count, round-robin init shots, the class prompt, the optional filter."""

import pytest

from datadream_bench.plugins import load_registry
from datadream_bench.testing import check_method
from dd_bench_issynth.config import IsSynthConfig, strength_for_shots
from dd_bench_issynth.method import IsSynth

IS = IsSynth()


def test_registered_with_its_notes():
    registry = load_registry()
    assert isinstance(registry.methods["issynth"], IsSynth)
    assert "GLIDE" in IS.notes and "Stable Diffusion" in IS.notes


def test_defaults_are_the_published_ones():
    c = IsSynthConfig()
    assert (c.images_per_class, c.num_inference_steps, c.guidance_scale, c.strength) == (800, 50, 3.0, None)
    assert not c.clip_filter
    for values in IS.profile_defaults.values():
        IsSynthConfig(**values)


@pytest.mark.parametrize("shots,strength", [(16, 0.15), (8, 0.20), (4, 0.35), (2, 0.40), (1, 0.50),
                                            (3, 0.40), (5, 0.35), (32, 0.15)])
def test_strength_by_shot_count(shots, strength):
    assert strength_for_shots(shots) == strength


@pytest.mark.parametrize("shots", [1, 2, 4])
def test_sample_applies_the_table_for_the_draw(make_ctx, recording_sampler, shots):
    ctx = make_ctx(IS, shots=shots, num_inference_steps=7, guidance_scale=3.5)
    sampler = recording_sampler()
    IS.sample(ctx, sampler, IS.plan(ctx)[:2])
    assert sampler.calls == [{"strength": strength_for_shots(shots), "num_inference_steps": 7,
                              "guidance_scale": 3.5, "fit": "crop"}]
    fixed = make_ctx(IS, shots=shots, strength=0.6)
    sampler = recording_sampler()
    IS.sample(fixed, sampler, IS.plan(fixed)[:1])
    assert sampler.calls[0]["strength"] == 0.6


def test_each_image_starts_from_a_shot_of_its_class_round_robin(make_ctx):
    ctx = make_ctx(IS, shots=2, images_per_class=5)
    requests = IS.plan(ctx)
    assert len(requests) == 5 * len(ctx.dataset.classes)
    for r in requests:
        assert r.init_image == ctx.fewshot.shots[r.label][r.index % 2].path
        assert r.prompt == ctx.prompt(r.label) and r.seed == ctx.image_seed(r.label, r.index)
    assert [r.init_image for r in requests] == [r.init_image for r in IS.plan(ctx)]


def test_filter_models_are_declared_only_when_filtering():
    assert IS.required_models(IsSynthConfig(), "clip-x") == []
    assert IS.required_models(IsSynthConfig(clip_filter=True), "clip-x") == [("filter_model", "clip", "clip-x")]
    on_own = IsSynthConfig(clip_filter=True, filter_model="/models/rn50")
    assert IS.required_models(on_own, "clip-x") == [("filter_model", "clip", "/models/rn50")]


def test_check_method_with_the_filter(tmp_path):
    records = check_method("issynth", tmp_path, settings=["synthetic"], overrides={"clip_filter": True,
                                                                                  "filter_max_attempts": 2})
    (record,) = records
    assert "GLIDE" in record["method_notes"]
    report = record["generation"]["filter"]
    assert report["settings"]["rule"] == "above-chance" and report["settings"]["max_attempts"] == 2
    assert report["total"]["candidates"] >= record["generation"]["images"] == 4 * 5
    assert set(report["per_class"]) == {"digit zero", "digit one", "digit two", "digit three", "digit four"}
