"""The generation fast path: SDPA attention everywhere, channels-last, images unchanged."""

import numpy as np
import torch

from datadream_bench.engine.fast import prepare
from datadream_bench.models.tiny import tiny_sd_pipeline


def sample(pipe):
    return pipe(prompt=["a photo of a digit one"], num_inference_steps=3, guidance_scale=2.0, output_type="np",
                generator=[torch.Generator().manual_seed(3)]).images[0]


def test_prepare_sets_sdpa_and_channels_last_without_changing_images():
    from diffusers.models.attention_processor import AttnProcessor

    pipe = tiny_sd_pipeline(0)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.set_attn_processor(AttnProcessor())  # an older, unfused processor
    before = sample(pipe)
    report = prepare(pipe, channels_last=True)
    assert report.attention["unet"] == "AttnProcessor2_0" and report.attention["vae"] == "AttnProcessor2_0"
    assert report.attention["text_encoder"] == "sdpa"
    assert report.replaced_attention == ["unet: AttnProcessor"]
    assert report.channels_last and pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert not report.compiled and report.dtype == "float32"
    np.testing.assert_allclose(sample(pipe), before, atol=1e-5)


def test_prepare_keeps_cpu_layout_and_casts_only_when_asked():
    pipe = tiny_sd_pipeline(0)
    report = prepare(pipe)
    assert not report.channels_last and report.replaced_attention == []
    report = prepare(pipe, dtype=torch.bfloat16)
    assert report.dtype == "bfloat16" and pipe.unet.dtype == torch.bfloat16
