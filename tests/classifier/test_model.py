import pytest
import torch

from datadream_bench.classifier import model as clip
from datadream_bench.errors import UsageError
from datadream_bench.models import tiny


@pytest.fixture
def lora_clip():
    model, tokenizer = tiny.tiny_clip(0)
    torch.manual_seed(1)
    clip.add_lora(model, 16, 32, 0.1)
    with torch.no_grad():  # B starts at zero; make the LoRA branch do something
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model.eval(), tokenizer


def test_lora_is_on_q_and_v_of_every_block_of_both_towers_only(lora_clip):
    from peft.tuners.lora import LoraLayer

    model, _ = lora_clip
    wrapped = sorted(name for name, m in model.named_modules() if isinstance(m, LoraLayer))
    expected = sorted(
        f"{tower}.encoder.layers.{i}.self_attn.{proj}"
        for tower, cfg in (("text_model", model.config.text_config), ("vision_model", model.config.vision_config))
        for i in range(cfg.num_hidden_layers)
        for proj in ("q_proj", "v_proj")
    )
    assert wrapped == expected
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    layer = model.get_submodule(expected[0])
    assert layer.r["default"] == 16 and layer.scaling["default"] == 2.0
    assert layer.lora_dropout["default"].p == 0.1


def test_text_tower_on_the_longest_prompt_equals_the_full_context(lora_clip):
    model, tokenizer = lora_clip
    prompts = ["a photo of a digit zero", "a photo of a cat", "a photo of a very long class name indeed"]
    short = clip.text_inputs(tokenizer, prompts, 77, "cpu")
    assert short["input_ids"].shape[1] < 77
    full = tokenizer(prompts, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        a = clip.text_features(model, short)
        b = clip.text_features(model, {"input_ids": full.input_ids, "attention_mask": full.attention_mask})
        c = clip.text_features(model, {"input_ids": full.input_ids})  # no mask at all: causal masking suffices
    assert (a - b).abs().max() <= 1e-6
    assert (a - c).abs().max() <= 1e-6


def test_a_prompt_longer_than_the_context_is_an_error(lora_clip):
    _, tokenizer = lora_clip
    with pytest.raises(UsageError, match="longer than the CLIP text context"):
        clip.text_inputs(tokenizer, ["short", "x" * 100], 77, "cpu")


def test_lora_state_round_trips_and_rejects_another_layout(lora_clip):
    model, _ = lora_clip
    state = clip.lora_state(model)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in state)
    fresh, _ = tiny.tiny_clip(0)
    clip.add_lora(fresh, 16, 32, 0.1)
    clip.load_lora_state(fresh, state)
    assert all(torch.equal(v, clip.lora_state(fresh)[k]) for k, v in state.items())
    other, _ = tiny.tiny_clip(0)
    clip.add_lora(other, 8, 16, 0.1)
    with pytest.raises(UsageError, match="LoRA rank"):
        clip.load_lora_state(other, state)
    with pytest.raises(UsageError, match="missing"):
        clip.load_lora_state(fresh, {k: v for k, v in list(state.items())[1:]})


def test_logits_are_scaled_cosines(lora_clip):
    model, tokenizer = lora_clip
    text = clip.text_inputs(tokenizer, ["a photo of a one", "a photo of a two"], 77, "cpu")
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = clip.logits(model, pixels, clip.text_features(model, text))
    assert out.shape == (3, 2)
    assert out.abs().max() <= model.logit_scale.exp() + 1e-4


def test_accuracy_overall_and_per_class():
    m = clip.accuracy(torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 0, 2, 2]), 4)
    assert m["top1"] == 60.0 and m["n"] == 5
    assert m["per_class"] == [50.0, 100.0, 50.0, None]
