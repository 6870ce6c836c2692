"""Zero-shot SD: no adapt units, every class's prompt with no adapter, the configured steps and guidance."""

import numpy as np
import pytest

from datadream_bench.engine.generate import generate
from datadream_bench.engine.sampler import Sampler
from datadream_bench.plugins import load_registry
from dd_bench_datadream.method import DataDreamClassWise
from dd_bench_zero_shot_sd.method import ZeroShotConfig, ZeroShotSD

ZS = ZeroShotSD()


def test_registered_through_the_entry_points():
    registry = load_registry()
    assert isinstance(registry.methods["zero-shot-sd"], ZeroShotSD)
    assert {"datadream-cls", "datadream-dset"} <= set(registry.methods)
    broken = [p for p in registry.plugins if p.name in ("datadream", "zero_shot_sd") and p.error]
    assert not broken


def test_no_adapt_units_and_one_plain_request_per_image(make_ctx):
    ctx = make_ctx(ZS, images_per_class=3)
    assert ZS.adapt_units(ctx) == []
    requests = ZS.plan(ctx)
    assert len(requests) == 3 * len(ctx.dataset.classes)
    for r in requests:
        assert r.adapter is None and r.init_image is None
        assert r.prompt == ctx.prompt(r.label)
        assert r.seed == ctx.image_seed(r.label, r.index)


def test_its_context_refuses_the_shots_it_declares_it_never_reads(make_ctx):
    from datadream_bench.validation import ContractError

    ctx = make_ctx(ZS)
    assert ZS.reads_shots is False
    with pytest.raises(ContractError, match=r"'zero-shot-sd' declares reads_shots = False .* ctx.fewshot.shots"):
        ctx.shot_units()


def test_defaults_match_datadream_generation():
    c = ZeroShotConfig()
    assert (c.images_per_class, c.num_inference_steps, c.guidance_scale, c.batch_size) == (500, 50, 2.0, 10)
    dd = DataDreamClassWise.profile_defaults
    for profile, values in ZS.profile_defaults.items():
        assert values["images_per_class"] == dd[profile]["images_per_class"]
        ZeroShotConfig(**values)
    with pytest.raises(ValueError):
        ZeroShotConfig(images_per_class=0)


def test_sample_uses_the_configured_steps_and_guidance(make_ctx, recording_sampler):
    ctx = make_ctx(ZS, num_inference_steps=9, guidance_scale=4.0)
    sampler = recording_sampler()
    ZS.sample(ctx, sampler, ZS.plan(ctx)[:2])
    assert sampler.calls == [{"num_inference_steps": 9, "guidance_scale": 4.0}]


def test_generates_through_the_engine_on_the_tiny_model(make_ctx, tiny_pipe, tmp_path):
    ctx = make_ctx(ZS, images_per_class=2, num_inference_steps=2)
    sampler = Sampler(tiny_pipe, "cpu", ctx.dtype)
    requests = ZS.plan(ctx)
    report = generate(ZS, sampler, requests, tmp_path, batch_size=3, load_adapter=lambda unit: None, ctx=ctx)
    assert report.images == len(requests)
    files = sorted((tmp_path / "images").rglob("*.png"))
    assert len(files) == len(requests)
    from PIL import Image

    with Image.open(files[0]) as img:
        assert img.size == (32, 32) and np.asarray(img).std() > 0
