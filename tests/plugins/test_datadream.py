"""DataDream on the tiny random SD: the LoRA trainer learns, adapt leaves the base as it was, is deterministic,
feeds each unit the right shots and prompts, and the engine's merged LoRA draws what the PEFT layers draw."""

import numpy as np
import pytest
import torch

from datadream_bench import api
from datadream_bench.api import class_unit
from datadream_bench.datasets.images import load_rgb
from datadream_bench.engine.lora import merged_lora, unmerged_lora
from datadream_bench.method import stage_fields
from dd_bench_datadream import method as dd_method
from dd_bench_datadream.config import DataDreamConfig
from dd_bench_datadream.method import DATASET_UNIT, DataDreamClassWise, DataDreamDatasetWise, finetuner
from datadream_bench.api import Example

CLS, DSET = DataDreamClassWise(), DataDreamDatasetWise()


def snapshot(pipe):
    """Everything adapt could leave changed on the base: weights, module tree, grad flags, modes, attributes."""
    out = {}
    for name in ("unet", "text_encoder", "vae"):
        m = getattr(pipe, name)
        out[name] = {
            "state": {k: v.detach().clone() for k, v in m.state_dict().items()},
            "modules": [(n, type(c).__name__) for n, c in m.named_modules()],
            "requires_grad": {n: p.requires_grad for n, p in m.named_parameters()},
            "grads": [n for n, p in m.named_parameters() if p.grad is not None],
            "training": {n: c.training for n, c in m.named_modules()},
            "attrs": sorted(m.__dict__),
            "peft_config": dict(getattr(m, "peft_config", {})),
        }
    return out


def assert_same_base(before, after):
    for name in before:
        b, a = before[name], after[name]
        assert a["modules"] == b["modules"], f"{name}: module tree changed (LoRA layers left behind?)"
        assert a["state"].keys() == b["state"].keys()
        for k in b["state"]:
            assert torch.equal(a["state"][k], b["state"][k]), f"{name}.{k} changed"
        for key in ("requires_grad", "grads", "training", "attrs", "peft_config"):
            assert a[key] == b[key], f"{name}: {key} changed"


def digit_examples(digits, label, k):
    return [Example(s.path, digits.prompt(label)) for s in digits.by_class("train")[label][:k]]


def test_training_lowers_the_loss_on_a_fixed_probe_batch(tiny_pipe, digits):
    examples = digit_examples(digits, 0, 4)
    config = DataDreamConfig(lr=3e-3, warmup_steps=0, epochs=100, train_batch_size=4)
    with finetuner(tiny_pipe, examples, config, seed=0) as trainer:
        g = torch.Generator().manual_seed(1234)
        idx = list(range(len(examples)))
        latents = trainer.latents(idx, g)
        noise = torch.randn(latents.shape, generator=g)
        t = torch.tensor([100, 300, 600, 900])
        rows = trainer.prompt_rows(idx)
        with torch.no_grad():
            before = float(trainer.loss(latents, noise, t, rows))
        trainer.train(steps=40)
        with torch.no_grad():
            after = float(trainer.loss(latents, noise, t, rows))
    assert after < 0.9 * before, (before, after)


def test_steps_are_epochs_times_batches_per_epoch(tiny_pipe, digits):
    examples = digit_examples(digits, 1, 5)
    config = DataDreamConfig(epochs=3, train_batch_size=2, warmup_steps=0)
    seen = []
    with finetuner(tiny_pipe, examples, config, seed=0) as trainer:
        assert trainer.total_steps == 9  # 3 epochs x ceil(5 / 2)
        losses = trainer.train(progress=lambda done, total: seen.append((done, total)))
    assert len(losses) == 9
    assert seen[-1] == (9, 9)


def test_lora_layers_and_targets_follow_the_recipe(tiny_pipe, digits):
    config = DataDreamConfig(epochs=1, warmup_steps=0, rank=4, alpha=8.0)
    with finetuner(tiny_pipe, digit_examples(digits, 0, 2), config, seed=0) as trainer:
        weights = trainer.lora_weights()
        assert all(p.dtype == torch.float32 and p.requires_grad for p in trainer.params)
    assert (weights.rank, weights.alpha) == (4, 8.0)
    modules = {key.rsplit(".lora_", 1)[0] for key in weights.tensors}
    unet = {m.split(".", 1)[1] for m in modules if m.startswith("unet.")}
    text = {m.split(".", 1)[1] for m in modules if m.startswith("text_encoder.")}
    assert {m.rsplit(".", 1)[-1] for m in unet} == {"to_q", "to_k", "to_v", "0"}
    assert any(m.endswith("to_out.0") for m in unet)
    assert {m.rsplit(".", 1)[-1] for m in text} == {"q_proj", "k_proj", "v_proj", "out_proj"}
    a = next(v for k, v in weights.tensors.items() if k.endswith("lora_A.weight"))
    assert a.shape[0] == 4
    # Gaussian init of A has std 1 / rank (peft's "gaussian"), B starts at zero.
    assert 0.15 < float(a.std()) < 0.35


def test_text_encoder_lora_can_be_off(tiny_pipe, digits):
    config = DataDreamConfig(epochs=1, warmup_steps=0, train_text_encoder=False)
    with finetuner(tiny_pipe, digit_examples(digits, 0, 2), config, seed=0) as trainer:
        trainer.train()
        weights = trainer.lora_weights()
    assert weights.tensors and all(k.startswith("unet.") for k in weights.tensors)


@pytest.mark.parametrize("method", [CLS, DSET], ids=lambda m: m.name)
def test_adapt_leaves_the_base_pipeline_exactly_as_it_was(method, make_ctx, tiny_pipe):
    events = []
    ctx = make_ctx(method, progress=lambda *e: events.append(e))
    before = snapshot(tiny_pipe)
    result = method.adapt(ctx, method.adapt_units(ctx)[0])
    assert result.lora is not None and result.data["steps"] > 0
    assert events[-1] == ("LoRA steps", result.data["steps"], result.data["steps"])
    assert_same_base(before, snapshot(tiny_pipe))


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")
def test_adapt_keeps_a_peft_config_that_was_already_there(make_ctx, tiny_pipe, monkeypatch):
    # Another PEFT user (the engine's unmerged_lora, say) may have left its config dict on the module.
    monkeypatch.setattr(tiny_pipe.unet, "peft_config", {"other": "its config"}, raising=False)
    before = snapshot(tiny_pipe)
    CLS.adapt(make_ctx(CLS), class_unit(0))
    assert tiny_pipe.unet.peft_config == {"other": "its config"}
    assert_same_base(before, snapshot(tiny_pipe))


def test_adapt_restores_the_base_after_an_error(make_ctx, tiny_pipe, monkeypatch):
    ctx = make_ctx(CLS)
    before = snapshot(tiny_pipe)
    calls = []

    def failing_step(self, indices):
        calls.append(indices)
        if len(calls) == 2:
            raise RuntimeError("out of memory, say")
        return original(self, indices)

    original = api.Finetuner.step
    monkeypatch.setattr(api.Finetuner, "step", failing_step)
    with pytest.raises(RuntimeError, match="out of memory"):
        CLS.adapt(ctx, class_unit(0))
    assert_same_base(before, snapshot(tiny_pipe))


def test_adapt_is_deterministic_in_the_cell_seed_and_unit(make_ctx):
    ctx = make_ctx(CLS, seed=0)
    first = CLS.adapt(ctx, class_unit(1)).lora.tensors
    again = CLS.adapt(make_ctx(CLS, seed=0), class_unit(1)).lora.tensors
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    other_seed = CLS.adapt(make_ctx(CLS, seed=1), class_unit(1)).lora.tensors
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)
    # B starts at zero: a trained LoRA has moved it.
    assert any(k.endswith("lora_B.weight") and first[k].abs().max() > 0 for k in first)


class Spy:
    seen: list = []

    def __call__(self, pipe, examples, config, seed):
        Spy.seen.append(examples)
        return finetuner(pipe, examples, config, seed)


def test_dataset_wise_unit_trains_on_every_class_with_its_own_prompt(make_ctx, monkeypatch):
    monkeypatch.setattr(dd_method, "finetuner", Spy())
    Spy.seen = []
    ctx = make_ctx(DSET, shots=2)
    assert DSET.adapt_units(ctx) == [DATASET_UNIT]
    DSET.adapt(ctx, DATASET_UNIT)
    (examples,) = Spy.seen
    expected = [(s.path, label) for label, group in enumerate(ctx.fewshot.shots) for s in group]
    assert len(examples) == len(expected) == 2 * len(ctx.dataset.classes)
    for example, (path, label) in zip(examples, expected):
        assert (example.image, example.prompt) == (path, ctx.prompt(label))
    assert len({e.prompt for e in examples}) == len(ctx.dataset.classes)


def test_class_wise_unit_trains_on_its_own_class_only(make_ctx, monkeypatch):
    monkeypatch.setattr(dd_method, "finetuner", Spy())
    Spy.seen = []
    ctx = make_ctx(CLS, shots=3)
    units = CLS.adapt_units(ctx)
    assert units == [class_unit(label) for label in range(len(ctx.dataset.classes))]
    CLS.adapt(ctx, units[2])
    (examples,) = Spy.seen
    assert [(e.image, e.prompt) for e in examples] == [(s.path, ctx.prompt(2)) for s in ctx.fewshot.shots[2]]


def test_unknown_unit_is_a_usage_error(make_ctx):
    with pytest.raises(api.UsageError, match="class-0099"):
        CLS.adapt(make_ctx(CLS), "class-0099")
    with pytest.raises(api.UsageError, match=DATASET_UNIT):
        DSET.adapt(make_ctx(DSET), class_unit(0))


def test_merged_lora_draws_what_the_peft_layers_draw(make_ctx, tiny_pipe):
    # A large learning rate so the LoRA visibly changes the images of the random base.
    ctx = make_ctx(CLS, lr=3e-2, epochs=4)
    weights = CLS.adapt(ctx, class_unit(0)).lora
    components = {"unet": tiny_pipe.unet, "text_encoder": tiny_pipe.text_encoder}

    def draw():
        g = torch.Generator().manual_seed(7)
        return tiny_pipe([ctx.prompt(0)] * 2, num_inference_steps=3, guidance_scale=2.0, generator=g,
                         output_type="np").images

    base = draw()
    with merged_lora(components, weights):
        merged = draw()
    with unmerged_lora(components, weights):
        unmerged = draw()
    assert np.abs(merged - base).max() > 1e-3  # the LoRA does something
    assert np.abs(merged - unmerged).max() < 1e-5
    assert np.array_equal(draw(), base)  # and both leave the base as it was


def test_plan_gives_each_class_its_own_adapter(make_ctx):
    ctx = make_ctx(CLS, images_per_class=3)
    requests = CLS.plan(ctx)
    assert len(requests) == 3 * len(ctx.dataset.classes)
    assert {r.adapter for r in requests} == set(CLS.adapt_units(ctx))
    for r in requests:
        assert r.adapter == class_unit(r.label)
        assert r.prompt == ctx.prompt(r.label)
        assert r.seed == ctx.image_seed(r.label, r.index)
    assert len({r.id for r in requests}) == len(requests)


def test_plan_gives_every_class_the_one_dataset_adapter(make_ctx):
    ctx = make_ctx(DSET, images_per_class=2)
    requests = DSET.plan(ctx)
    assert len(requests) == 2 * len(ctx.dataset.classes)
    assert {r.adapter for r in requests} == {DATASET_UNIT}
    assert {r.label for r in requests} == set(range(len(ctx.dataset.classes)))


def test_sample_uses_the_configured_steps_and_guidance(make_ctx, recording_sampler):
    ctx = make_ctx(CLS, num_inference_steps=7, guidance_scale=3.5)
    sampler = recording_sampler()
    images = CLS.sample(ctx, sampler, CLS.plan(ctx)[:3])
    assert len(images) == 3
    assert sampler.calls == [{"num_inference_steps": 7, "guidance_scale": 3.5}]


def test_a_prompt_longer_than_the_context_is_refused_before_any_work(tiny_pipe, digits, monkeypatch):
    encoded = []
    monkeypatch.setattr(tiny_pipe.vae, "encode", lambda *a, **k: encoded.append(1))
    long = [Example(load_rgb(digits.by_class("train")[0][0].path), "a photo of a " + "very " * 20 + "long name")]
    with pytest.raises(api.UsageError, match="longer than the text encoder's 77 tokens"):
        finetuner(tiny_pipe, long, DataDreamConfig(), seed=0)
    assert encoded == []


def test_a_diverged_lora_is_refused(tiny_pipe, digits):
    config = DataDreamConfig(epochs=1, warmup_steps=0)
    with finetuner(tiny_pipe, digit_examples(digits, 0, 2), config, seed=0) as trainer:
        trainer.train()
        trainer.params[0].data[0, 0] = float("nan")
        with pytest.raises(api.UsageError, match="diverged"):
            trainer.lora_weights()


def test_a_broken_image_is_a_usage_error_naming_the_file(tiny_pipe, tmp_path):
    bad = tmp_path / "truncated.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    trainer = finetuner(tiny_pipe, [Example(str(bad), "a photo of a digit zero")], DataDreamConfig(), seed=0)
    before = snapshot(tiny_pipe)
    with pytest.raises(api.UsageError, match="truncated.png"):
        with trainer:
            pass
    assert_same_base(before, snapshot(tiny_pipe))


def test_square_images_are_encoded_once_and_others_every_step(tiny_pipe, digits, monkeypatch):
    calls = []
    real_encode = tiny_pipe.vae.encode

    def counting_encode(x, *a, **k):
        calls.append(x.shape[0])
        return real_encode(x, *a, **k)

    monkeypatch.setattr(tiny_pipe.vae, "encode", counting_encode)
    square = digit_examples(digits, 0, 4)
    config = DataDreamConfig(epochs=5, warmup_steps=0, train_batch_size=4)
    with finetuner(tiny_pipe, square, config, seed=0) as trainer:
        trainer.train()
    assert calls == [4]  # one batched encode at setup, none per step

    calls.clear()
    wide = load_rgb(square[0].image).resize((48, 32))
    with finetuner(tiny_pipe, [Example(wide, square[0].prompt)], config, seed=0) as trainer:
        trainer.train()
        first = trainer.lora_weights().tensors
    assert calls == [1] * 5  # a fresh random crop, encoded, at each of the 5 steps
    with finetuner(tiny_pipe, [Example(wide, square[0].prompt)], config, seed=0) as trainer:
        trainer.train()
        again = trainer.lora_weights().tensors
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_lora_trains_in_fp32_on_a_half_precision_base(digits):
    from datadream_bench.models.loading import load_sd

    pipe = load_sd("tiny:0", "cpu", torch.bfloat16)
    before = snapshot(pipe)
    config = DataDreamConfig(epochs=2, warmup_steps=0, lr=1e-3)
    with finetuner(pipe, digit_examples(digits, 0, 2), config, seed=0) as trainer:
        assert all(p.dtype == torch.float32 for p in trainer.params)
        losses = trainer.train()
        weights = trainer.lora_weights()
    assert all(np.isfinite(losses))
    assert all(v.dtype == torch.float32 for v in weights.tensors.values())
    assert_same_base(before, snapshot(pipe))


def test_config_fields_key_the_right_stage():
    config = DataDreamConfig()
    adapt = stage_fields(config, "adapt")
    assert {"rank", "alpha", "lr", "epochs", "train_batch_size", "warmup_steps", "train_text_encoder"} <= set(adapt)
    assert set(stage_fields(config, "generate")) == {"images_per_class", "num_inference_steps", "guidance_scale"}
    assert set(stage_fields(config, "run")) == {"batch_size"}


def test_paper_defaults_and_profiles():
    c = DataDreamConfig()
    assert (c.rank, c.alpha, c.lr, c.weight_decay, c.adam_epsilon, c.max_grad_norm) == (16, 16.0, 1e-4, 1e-2, 1e-8, 1.0)
    assert (c.adam_beta1, c.adam_beta2, c.warmup_steps, c.epochs, c.train_batch_size) == (0.9, 0.999, 100, 200, 8)
    assert (c.images_per_class, c.num_inference_steps, c.guidance_scale, c.batch_size) == (500, 50, 2.0, 10)
    assert c.train_text_encoder
    for method in (CLS, DSET):
        for profile, values in method.profile_defaults.items():
            method.Config(**values)  # every profile's values are valid settings
    assert CLS.profile_defaults["demo"]["images_per_class"] == 40
    with pytest.raises(ValueError):
        DataDreamConfig(rank=0)
