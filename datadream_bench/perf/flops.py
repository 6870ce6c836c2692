"""FLOPs of one forward (or training step) of each backbone, counted by torch's FlopCounterMode on meta tensors.

A FLOP is a multiply or an add (a multiply-accumulate is 2), as FlopCounterMode counts matmuls, convolutions and
attention; element-wise ops (norms, activations) are not counted, which is how model FLOPs and MFU are usually
stated. Counts are taken at batch 1 and scaled: every layer here is linear in the batch (tests check it).

Training steps are counted on the model as it trains: LoRA injected by peft (rank 16 on the layers DataDream and the
classifier adapt), base weights frozen, so the backward pass computes activation gradients through the whole
network and weight gradients only for the LoRA factors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch

from . import architectures as arch

SD_LORA_RANK = 16
CLIP_LORA_RANK = 16


def count(fn: Callable[[], object]) -> int:
    """FLOPs of everything fn runs."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _meta(*shape, dtype=torch.float32) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype)


def _with_lora(model: torch.nn.Module, targets: list[str], rank: int) -> torch.nn.Module:
    from peft import LoraConfig, inject_adapter_in_model

    model.requires_grad_(False)
    with torch.device("meta"):
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), model)
    return model


def _backward(out: torch.Tensor) -> None:
    out.float().sum().backward()


# ---- Stable Diffusion 2.1-base ----

@lru_cache(maxsize=None)
def unet_forward(latent: int = arch.SD_LATENT_SIZE) -> int:
    """One UNet forward, batch 1, a latent of latent x latent, 77 text tokens of cross-attention."""
    unet = arch.sd_unet()
    x, t, c = _meta(1, arch.SD_LATENT_CHANNELS, latent, latent), torch.tensor([500], device="meta"), \
        _meta(1, arch.SD_TEXT_TOKENS, arch.SD21_UNET["cross_attention_dim"])
    with torch.no_grad():
        return count(lambda: unet(x, t, c))


@lru_cache(maxsize=None)
def unet_lora_train(latent: int = arch.SD_LATENT_SIZE) -> int:
    """One UNet training step (forward + backward) of one image with LoRA on to_q/k/v/out.0."""
    from ..engine.lora import UNET_TARGETS

    unet = _with_lora(arch.sd_unet(), list(UNET_TARGETS), SD_LORA_RANK)
    x, t, c = _meta(1, arch.SD_LATENT_CHANNELS, latent, latent), torch.tensor([500], device="meta"), \
        _meta(1, arch.SD_TEXT_TOKENS, arch.SD21_UNET["cross_attention_dim"])
    return count(lambda: _backward(unet(x, t, c).sample))


@lru_cache(maxsize=None)
def vae_decode(latent: int = arch.SD_LATENT_SIZE) -> int:
    vae = arch.sd_vae()
    z = _meta(1, arch.SD_LATENT_CHANNELS, latent, latent)
    with torch.no_grad():
        return count(lambda: vae.decode(z))


@lru_cache(maxsize=None)
def vae_encode(image: int = arch.SD_IMAGE_SIZE) -> int:
    vae = arch.sd_vae()
    x = _meta(1, 3, image, image)
    with torch.no_grad():
        return count(lambda: vae.encode(x))


@lru_cache(maxsize=None)
def sd_text_forward(tokens: int = arch.SD_TEXT_TOKENS) -> int:
    te = arch.sd_text_encoder()
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    with torch.no_grad():
        return count(lambda: te(ids))


@lru_cache(maxsize=None)
def sd_text_lora_train(tokens: int = arch.SD_TEXT_TOKENS) -> int:
    from ..engine.lora import TEXT_TARGETS

    te = _with_lora(arch.sd_text_encoder(), list(TEXT_TARGETS), SD_LORA_RANK)
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    return count(lambda: _backward(te(ids)[0]))


# ---- CLIP ViT-B/16 (the classifier) ----

def _clip_with_lora():
    from ..classifier.model import LORA_TARGETS

    return _with_lora(arch.clip_vit_b16(), list(LORA_TARGETS), CLIP_LORA_RANK)


@lru_cache(maxsize=None)
def clip_image_forward(size: int = arch.CLIP_IMAGE_SIZE) -> int:
    model = arch.clip_vit_b16()
    x = _meta(1, 3, size, size)
    with torch.no_grad():
        return count(lambda: model.visual_projection(model.vision_model(pixel_values=x).pooler_output))


@lru_cache(maxsize=None)
def clip_image_lora_train(size: int = arch.CLIP_IMAGE_SIZE) -> int:
    model = _clip_with_lora()
    x = _meta(1, 3, size, size)
    return count(lambda: _backward(model.visual_projection(model.vision_model(pixel_values=x).pooler_output)))


@lru_cache(maxsize=None)
def clip_text_forward(tokens: int) -> int:
    model = arch.clip_vit_b16()
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    with torch.no_grad():
        return count(lambda: model.text_projection(model.text_model(input_ids=ids).pooler_output))


@lru_cache(maxsize=None)
def clip_text_lora_train(tokens: int) -> int:
    model = _clip_with_lora()
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    return count(lambda: _backward(model.text_projection(model.text_model(input_ids=ids).pooler_output)))
