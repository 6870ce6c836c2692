"""LoFT: one LoRA per real image (rank 2, UNet only, center crop), and each image from a weighted fusion of two of
its class's per-image LoRAs; the fusion of every image recorded, its weights drawn from its id when random."""


import pytest
import torch

from datadream_bench import api
from dd_bench_loft.config import LoftConfig
from dd_bench_loft.method import Loft

LOFT = Loft()


def test_defaults_follow_the_released_code():
    c = LoftConfig()
    assert (c.rank, c.alpha, c.lr, c.warmup_steps, c.epochs, c.train_batch_size) == (2, 2.0, 1e-3, 10, 600, 1)
    assert not c.train_text_encoder and c.center_crop
    assert (c.adam_beta1, c.adam_beta2, c.weight_decay, c.adam_epsilon, c.max_grad_norm) == (0.9, 0.999, 1e-2, 1e-8,
                                                                                           1.0)
    assert (c.images_per_class, c.loras_per_image, c.fusion_weights) == (500, 2, (0.5, 0.5))
    assert (c.num_inference_steps, c.guidance_scale, c.batch_size) == (50, 2.0, 5)
    with pytest.raises(ValueError, match="3 weights for loras_per_image=2"):
        LoftConfig(fusion_weights=(0.2, 0.3, 0.5))
    for values in LOFT.profile_defaults.values():
        LoftConfig(**values)


def test_one_unit_per_real_image_each_trained_on_its_own_image(make_ctx, tiny_pipe, monkeypatch):
    seen = []
    real = api.Finetuner

    def spy(pipe, examples, schedule, **kw):
        seen.append((examples, schedule, kw))
        return real(pipe, examples, schedule, **kw)

    monkeypatch.setattr(api, "Finetuner", spy)
    ctx = make_ctx(LOFT, shots=3)
    units = LOFT.adapt_units(ctx)
    assert units == ctx.shot_units() and len(units) == 3 * len(ctx.dataset.classes)
    before = {k: v.clone() for k, v in tiny_pipe.unet.state_dict().items()}
    result = LOFT.adapt(ctx, "class-0001-shot-0002")
    ((examples, schedule, kw),) = seen
    assert [(e.image, e.prompt) for e in examples] == [(ctx.fewshot.shots[1][2].path, ctx.prompt(1))]
    assert schedule.epochs == ctx.config.epochs and kw["views"].crop == "center" and kw["lora"].rank == 2
    assert result.lora.rank == 2 and all(k.startswith("unet.") for k in result.lora.tensors)
    assert result.data["steps"] == ctx.config.epochs and result.data["image"] == ctx.fewshot.shots[1][2].path
    assert all(torch.equal(v, before[k]) for k, v in tiny_pipe.unet.state_dict().items())


def test_each_image_fuses_two_loras_of_its_class_every_pair_once_before_any_repeat(make_ctx):
    ctx = make_ctx(LOFT, shots=4, images_per_class=9)
    requests = LOFT.plan(ctx)
    assert len(requests) == 9 * len(ctx.dataset.classes) and len({r.id for r in requests}) == len(requests)
    for label in range(len(ctx.dataset.classes)):
        mine = sorted((r for r in requests if r.label == label), key=lambda r: r.index)
        pairs = [tuple(u for u, _ in r.adapter) for r in mine]
        assert all(len(p) == 2 and all(u.startswith(f"class-{label:04d}-shot-") for u in p) for p in pairs)
        assert all(w == 0.5 for r in mine for _, w in r.adapter)
        assert len(set(pairs[:6])) == 6  # C(4, 2) = 6 pairs, each once, then the order repeats
        assert pairs[6:] == pairs[:3]
    # the plan batches images that share a fusion: consecutive requests change adapter once per pair
    changes = sum(a.adapter != b.adapter for a, b in zip(requests, requests[1:]))
    assert changes == 6 * len(ctx.dataset.classes) - 1
    other_seed = LOFT.plan(make_ctx(LOFT, shots=4, seed=1, images_per_class=9))
    assert [r.adapter for r in other_seed] != [r.adapter for r in requests]  # the pair order follows the cell seed


def test_random_fusion_weights_are_recorded_and_seeded_per_image(make_ctx):
    ctx = make_ctx(LOFT, shots=3, images_per_class=6, fusion_weights=None)
    first = {r.id: r for r in LOFT.plan(ctx)}
    again = {r.id: r for r in LOFT.plan(make_ctx(LOFT, shots=3, images_per_class=6, fusion_weights=None))}
    assert first == again  # a function of the image's id and the cell seed only
    weights = [tuple(w for _, w in r.adapter) for r in first.values()]
    assert all(abs(sum(w) - 1) < 1e-5 and min(w) > 0 for w in weights)
    assert len(set(weights)) == len(weights)  # each image its own draw
    fewer = {r.id: r for r in LOFT.plan(make_ctx(LOFT, shots=3, images_per_class=3, fusion_weights=None))}
    assert all(fewer[i].adapter == first[i].adapter for i in fewer)  # making fewer images changes none of them
    record = next(iter(first.values())).record()
    assert [w for _, w in record["adapter"]] == list(weights[0])


def test_fusing_more_loras_than_shots_is_refused_before_any_training(make_ctx):
    ctx = make_ctx(LOFT, shots=2, loras_per_image=3, fusion_weights=(0.2, 0.3, 0.5))
    with pytest.raises(api.UsageError, match="loras_per_image=3 needs at least that many shots"):
        LOFT.adapt_units(ctx)


def test_cost_counts_one_lora_per_real_image():
    cost = LOFT.cost(LoftConfig(), classes=10, shots=16)
    assert (cost.images, cost.adapt_steps, cost.adapt_images) == (5000, 160 * 600, 160 * 600)
    assert not cost.adapt_text_encoder and cost.steps == 50
