"""Tiny Stable Diffusion and CLIP built in code: the same classes as SD 2.1-base and CLIP ViT-B/16, a few MB.

Used three ways: random weights for tests and plugin checks, and as the architecture of the demo world's
backbones (pretrained by scripts/pretrain_demo.py). Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path

import torch

# 32 px images; the 3-block VAE down-samples 4x to an 8x8 latent.
IMAGE_SIZE = 32
# Byte-level tokens: one per byte, so the context must fit the longest prompt (checked at run time).
TEXT_CONTEXT = 77


def byte_tokenizer():
    """A CLIP tokenizer with one token per byte and no merges: encodes any string, no vocabulary files needed."""
    from transformers import CLIPTokenizer
    from tokenizers.pre_tokenizers import ByteLevel

    symbols = sorted(ByteLevel.alphabet())  # the 256 printable stand-ins for bytes that CLIP's BPE works on
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + len(symbols) for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # eos must be the largest id: CLIP pools at argmax(input_ids)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TEXT_CONTEXT, pad_token="<|endoftext|>")


def text_config_kwargs(vocab_size: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TEXT_CONTEXT,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def sd_scheduler():
    """The noise schedule and sampler of SD 2.1-base (PNDM, scaled-linear betas, epsilon prediction)."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def tiny_sd_components(seed: int = 0) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = byte_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config_kwargs(len(tokenizer))))
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=4,
        norm_num_groups=8,
        use_linear_projection=True,
    )
    vae = AutoencoderKL(
        sample_size=IMAGE_SIZE,
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=sd_scheduler())


def tiny_sd_pipeline(seed: int = 0):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **tiny_sd_components(seed), safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def tiny_clip(seed: int = 0):
    """(CLIPModel, tokenizer): text tower like SD's tiny encoder, 32 px vision tower with 8 px patches."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tokenizer = byte_tokenizer()
    config = CLIPConfig(
        text_config=text_config_kwargs(len(tokenizer)),
        vision_config=dict(
            image_size=IMAGE_SIZE,
            patch_size=8,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
        projection_dim=32,
    )
    return CLIPModel(config), tokenizer


def save_tiny_sd(path: str | Path, seed: int = 0) -> Path:
    path = Path(path)
    tiny_sd_pipeline(seed).save_pretrained(path, safe_serialization=True)
    return path


def save_tiny_clip(path: str | Path, seed: int = 0) -> Path:

    path = Path(path)
    model, tokenizer = tiny_clip(seed)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    clip_image_processor(IMAGE_SIZE).save_pretrained(path)
    return path


def clip_image_processor(size: int):
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
