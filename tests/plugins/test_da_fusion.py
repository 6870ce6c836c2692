"""DA-Fusion: a textual-inversion token per class (only its embedding trains), then img2img of every shot with the
token at a strength drawn per image from the paper's list."""

from collections import Counter

import pytest
import torch

from datadream_bench import api
from datadream_bench.runner.stages import adapt
from dd_bench_da_fusion.config import DaFusionConfig
from dd_bench_da_fusion.method import TEMPLATES, DaFusion, token_of

DAF = DaFusion()


def test_defaults_follow_the_released_code():
    c = DaFusionConfig()
    assert (c.initializer, c.steps, c.train_batch_size, c.lr, c.warmup_steps, c.flip) == ("the", 1000, 4, 2e-3, 0,
                                                                                          0.5)
    assert (c.images_per_shot, c.strengths, c.strength_probs) == (10, (1.0, 0.75, 0.5, 0.25), (0.25,) * 4)
    assert (c.guidance_scale, c.num_inference_steps, c.prompt) == (7.5, 50, "a photo of a {token}")
    assert len(TEMPLATES) == 27 and all(t.count("{}") == 1 for t in TEMPLATES)
    with pytest.raises(ValueError, match="sum to 1"):
        DaFusionConfig(strength_probs=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="must contain"):
        DaFusionConfig(prompt="a photo")
    for values in DAF.profile_defaults.values():
        DaFusionConfig(**values)


def test_adapt_learns_one_token_per_class_and_changes_nothing_else(make_ctx, tiny_pipe):
    ctx = make_ctx(DAF, shots=2, steps=3)
    assert DAF.adapt_units(ctx) == ctx.class_units()
    before = {f"{c}.{k}": v.clone() for c in ("unet", "text_encoder", "vae")
              for k, v in getattr(tiny_pipe, c).state_dict().items()}
    result = DAF.adapt(ctx, api.class_unit(3))
    token = token_of(ctx.dataset.classes[3])
    assert token == "<digit_three>" and set(result.tokens) == {token} and result.lora is None
    start = api.initial_embedding(tiny_pipe.text_encoder, tiny_pipe.tokenizer, "the")
    assert result.tokens[token].shape == start.shape and not torch.equal(result.tokens[token], start)
    assert result.data["steps"] == 3 and result.data["embedding_moved"] > 0
    after = {f"{c}.{k}": v for c in ("unet", "text_encoder", "vae")
             for k, v in getattr(tiny_pipe, c).state_dict().items()}
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_each_shot_gives_m_images_at_strengths_drawn_per_image(make_ctx):
    ctx = make_ctx(DAF, shots=2, images_per_shot=8)
    requests = DAF.plan(ctx)
    assert len(requests) == 2 * 8 * len(ctx.dataset.classes) and len({r.id for r in requests}) == len(requests)
    for r in requests:
        assert r.init_image == ctx.fewshot.shots[r.label][r.index // 8].path
        assert r.adapter == api.class_unit(r.label)
        assert r.prompt == f"a photo of a {token_of(ctx.dataset.classes[r.label])}"
        assert r.strength in (1.0, 0.75, 0.5, 0.25) and r.strength == DAF.strength(ctx, r.label, r.index)
    counts = Counter(r.strength for r in requests)
    assert len(counts) == 4  # 80 draws: every strength appears
    again = {r.id: r for r in DAF.plan(make_ctx(DAF, shots=2, images_per_shot=8))}
    assert all(again[r.id] == r for r in requests)
    other = {r.id: r.strength for r in DAF.plan(make_ctx(DAF, shots=2, seed=5, images_per_shot=8))}
    assert [other[r.id] for r in requests] != [r.strength for r in requests]
    for label in range(len(ctx.dataset.classes)):  # within a class, batches run at one strength
        mine = [r.strength for r in requests if r.label == label]
        assert mine == sorted(mine)


def test_sample_asks_for_each_image_at_its_own_strength_from_the_stretched_shot(make_ctx, recording_sampler):
    ctx = make_ctx(DAF, num_inference_steps=6)
    sampler = recording_sampler()
    DAF.sample(ctx, sampler, DAF.plan(ctx)[:3])
    assert sampler.calls == [{"num_inference_steps": 6, "guidance_scale": 7.5, "fit": "stretch"}]


def test_the_learned_token_reaches_the_engine(make_ctx, tmp_path):
    ctx = make_ctx(DAF, shots=2, steps=2)
    adapt(DAF, ctx, tmp_path)
    unit = api.class_unit(0)
    assert set(ctx.adaptations[unit].tokens) == {"<digit_zero>"}
    from datadream_bench.engine.artifacts import AdapterLoader

    applied = AdapterLoader({}, ctx.adaptations)(unit)
    assert applied.loras == []
    assert torch.equal(applied.tokens["<digit_zero>"], ctx.adaptations[unit].tokens["<digit_zero>"])


def test_cost_counts_every_shot_and_the_mean_strength():
    cost = DAF.cost(DaFusionConfig(), classes=10, shots=16)
    assert cost.images == 10 * 16 * 10 and cost.strength == pytest.approx(0.625)
    assert (cost.adapt_steps, cost.adapt_images, cost.adapt_text_encoder) == (10 * 1000, 10 * 1000 * 4, True)
