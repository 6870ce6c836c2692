"""A weighted combination of LoRAs is merged like one LoRA: in place, one matmul per layer, restored exactly; a zero
weight adds nothing, so weights (1, 0) merge exactly what the first LoRA alone merges."""

import numpy as np
import torch

from datadream_bench.api import LoraWeights, lora_mix
from datadream_bench.contract import ImageRequest, adapter_units
from datadream_bench.engine.lora import merged_lora, sd_lora_targets
from datadream_bench.engine.sampler import AppliedAdapter, Sampler


def random_lora(pipe, seed, rank=2, alpha=2.0, scale=0.5):
    """LoRA factors on every UNet attention projection and text-encoder projection, drawn from a seed."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for component, targets in sd_lora_targets().items():
        for name, module in getattr(pipe, component).named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(tuple("." + t for t in targets)):
                out_f, in_f = module.weight.shape
                tensors[f"{component}.{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=g) * scale
                tensors[f"{component}.{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=g) * scale
    return LoraWeights(tensors, rank=rank, alpha=alpha)


def weights_of(pipe):
    return {f"{c}.{k}": v.detach().clone() for c in ("unet", "text_encoder")
            for k, v in getattr(pipe, c).state_dict().items()}


def components(pipe):
    return {"unet": pipe.unet, "text_encoder": pipe.text_encoder}


def test_weights_one_and_zero_merge_exactly_the_first_lora(tiny_pipe):
    a, b = random_lora(tiny_pipe, 1), random_lora(tiny_pipe, 2)
    base = weights_of(tiny_pipe)
    with merged_lora(components(tiny_pipe), a):
        alone = weights_of(tiny_pipe)
    with merged_lora(components(tiny_pipe), [(a, 1.0), (b, 0.0)]):
        mixed = weights_of(tiny_pipe)
    assert alone.keys() == mixed.keys()
    assert all(torch.equal(alone[k], mixed[k]) for k in alone)
    assert any(not torch.equal(alone[k], base[k]) for k in base)  # the LoRA did change the model
    after = weights_of(tiny_pipe)
    assert all(torch.equal(after[k], base[k]) for k in base)  # and the base came back exactly


def test_a_mix_merges_the_weighted_sum_of_the_deltas(tiny_pipe):
    a, b = random_lora(tiny_pipe, 1), random_lora(tiny_pipe, 2, rank=3, alpha=6.0)
    base = weights_of(tiny_pipe)
    with merged_lora(components(tiny_pipe), [(a, 0.3), (b, 0.7)]):
        mixed = weights_of(tiny_pipe)
    for (component, path), (fa, fb) in a.factors().items():
        key = f"{component}.{path}.weight"
        ga, gb = b.factors()[(component, path)]
        expected = base[key] + 0.3 * a.scale * fb @ fa + 0.7 * b.scale * gb @ ga
        assert torch.allclose(mixed[key], expected, atol=1e-5)
    assert all(torch.equal(weights_of(tiny_pipe)[k], base[k]) for k in base)


def test_the_sampler_draws_the_same_images_for_a_lora_and_its_one_zero_mix(tiny_pipe):
    a, b = random_lora(tiny_pipe, 3), random_lora(tiny_pipe, 4)
    sampler = Sampler(tiny_pipe)
    batch = [ImageRequest(0, i, seed=10 + i, prompt="a photo of a digit zero") for i in range(2)]

    def draw(adapter):
        with sampler.adapted(adapter):
            return np.stack([np.asarray(im) for im in sampler.text_to_image(batch, num_inference_steps=3,
                                                                            guidance_scale=2.0)])

    base = draw(None)
    alone = draw(AppliedAdapter(loras=[(a, 1.0)]))
    assert np.array_equal(alone, draw(AppliedAdapter(loras=[(a, 1.0), (b, 0.0)])))
    assert not np.array_equal(alone, base)
    assert not np.array_equal(alone, draw(AppliedAdapter(loras=[(a, 0.5), (b, 0.5)])))
    assert np.array_equal(draw(None), base)


def test_a_mix_is_recorded_with_its_weights():
    mix = lora_mix(("class-0000-shot-0001", 0.25), ("class-0000-shot-0003", 0.75))
    request = ImageRequest(0, 5, seed=1, prompt="p", adapter=mix)
    assert request.record()["adapter"] == [["class-0000-shot-0001", 0.25], ["class-0000-shot-0003", 0.75]]
    assert adapter_units("class-0001") == (("class-0001", 1.0),)
    assert adapter_units(mix) == mix
    hash(request)  # requests group by adapter in the engine: a mix must be hashable
