"""The paper's backbones as configs in code, built on the meta device: real shapes, no weights, no downloads.

Stable Diffusion 2.1-base (UNet, VAE, OpenCLIP ViT-H text encoder) and CLIP ViT-B/16 (both towers), as their
published config files give them. Building on meta costs a fraction of a second and no memory, so FLOPs can be
counted on the exact modules diffusers and transformers run.
"""

from __future__ import annotations

import torch

SD_IMAGE_SIZE = 512
SD_LATENT_SIZE = 64  # the VAE down-samples 8x
SD_LATENT_CHANNELS = 4
SD_TEXT_TOKENS = 77  # the pipeline always pads prompts to the full context

SD21_UNET = dict(
    sample_size=SD_LATENT_SIZE,
    in_channels=SD_LATENT_CHANNELS,
    out_channels=SD_LATENT_CHANNELS,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024,
    use_linear_projection=True,
    flip_sin_to_cos=True,
    freq_shift=0,
    norm_num_groups=32,
    act_fn="silu",
)

SD21_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=SD_LATENT_CHANNELS,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=768,
    scaling_factor=0.18215,
)

# OpenCLIP ViT-H/14's text tower as SD 2.x ships it: 24 layers in OpenCLIP, the last one dropped (SD 2 conditions
# on the penultimate layer), hence 23.
SD21_TEXT = dict(
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=SD_TEXT_TOKENS,
    hidden_act="gelu",
    projection_dim=512,
)

CLIP_IMAGE_SIZE = 224
CLIP_VIT_B16 = dict(
    text_config=dict(
        vocab_size=49408,
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=8,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
    ),
    vision_config=dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=CLIP_IMAGE_SIZE,
        patch_size=16,
        hidden_act="quick_gelu",
    ),
    projection_dim=512,
)


def sd_unet(device: str | torch.device = "meta"):
    from diffusers import UNet2DConditionModel

    with torch.device(device):
        return UNet2DConditionModel(**SD21_UNET)


def sd_vae(device: str | torch.device = "meta"):
    from diffusers import AutoencoderKL

    with torch.device(device):
        return AutoencoderKL(**SD21_VAE)


def sd_text_encoder(device: str | torch.device = "meta"):
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device(device):
        return CLIPTextModel(CLIPTextConfig(**SD21_TEXT))


def clip_vit_b16(device: str | torch.device = "meta"):
    from transformers import CLIPConfig, CLIPModel

    with torch.device(device):
        return CLIPModel(CLIPConfig(**CLIP_VIT_B16))


def sd_scheduler():
    """SD 2.1-base's sampler: PNDM over the scaled-linear schedule, epsilon prediction."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def byte_level_tokenizer():
    """A CLIP tokenizer built without files (the real one's vocabulary is not on this machine): enough to drive the
    pipeline, whose text encoder always sees 77 positions whatever the ids are."""
    from ..models.tiny import byte_tokenizer

    return byte_tokenizer()
