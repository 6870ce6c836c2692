"""FLOPs of the units of work the benchmark repeats (an image, a LoRA step, a classifier step), and their floors: the
least time each could take on a device running every FLOP at its peak."""

from __future__ import annotations

from dataclasses import dataclass

from . import architectures as arch
from . import flops

# Dense bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets (the sparse figures are twice these).
PEAK_TFLOPS = {
    "h100-sxm": 989.4,
    "h200": 989.4,
    "h100-pcie": 756.0,
    "a100": 312.0,
    "l40s": 362.0,
}

# Classifier prompts are padded to the longest prompt, not to 77 tokens; "a {word}photo of a {class}" is 10-20 BPE
# tokens for the paper's datasets, so 20 is a close upper estimate.
CLASSIFIER_TEXT_TOKENS = 20


@dataclass(frozen=True)
class Generation:
    """How one image is made: the denoising steps run, whether guidance doubles the UNet batch, img2img or not."""

    steps: int = 50
    guidance_scale: float = 2.0
    strength: float = 1.0  # img2img: the fraction of the schedule that is run (1.0 = text-to-image)
    image_size: int = arch.SD_IMAGE_SIZE

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0  # diffusers runs the unconditional branch only above 1

    @property
    def unet_passes(self) -> int:
        """UNet forwards (at batch 1) per image."""
        run = min(int(self.steps * self.strength), self.steps)
        return run * (2 if self.guided else 1)

    @property
    def img2img(self) -> bool:
        return self.strength < 1.0


def image_flops(g: Generation) -> int:
    """One generated image: prompt encoding (with the empty prompt under guidance), the denoising loop, VAE decode
    (and the VAE encode of the starting image for img2img)."""
    latent = g.image_size // 8
    total = g.unet_passes * flops.unet_forward(latent) + flops.vae_decode(latent)
    total += (2 if g.guided else 1) * flops.sd_text_forward()
    if g.img2img:
        total += flops.vae_encode(g.image_size)
    return total


def png_bytes_at_most(image_size: int = arch.SD_IMAGE_SIZE) -> int:
    """The most a generated image's PNG can take: raw RGB plus PNG's filter byte per row, with room for zlib's stored
    blocks and the chunk headers when nothing compresses. Photos take less; by how much depends on the content."""
    raw = image_size * (image_size * 3 + 1)
    return raw + raw // 1000 + 4096


def sd_lora_step_flops(batch: int, train_text_encoder: bool = True, image_size: int = arch.SD_IMAGE_SIZE) -> int:
    """One DataDream LoRA step. The VAE posterior of the (square) training images is cached, so no encode here."""
    per_image = flops.unet_lora_train(image_size // 8)
    per_image += flops.sd_text_lora_train() if train_text_encoder else 0
    return batch * per_image


def classifier_step_flops(batch: int, num_classes: int, text_tokens: int = CLASSIFIER_TEXT_TOKENS) -> int:
    """One CLIP-LoRA classifier step: the image batch and, through the LoRA'd text tower, every class prompt."""
    return batch * flops.clip_image_lora_train() + num_classes * flops.clip_text_lora_train(text_tokens)


def classifier_eval_flops(images: int, num_classes: int, text_tokens: int = CLASSIFIER_TEXT_TOKENS) -> int:
    return images * flops.clip_image_forward() + num_classes * flops.clip_text_forward(text_tokens)


def floor_seconds(flop: float, peak_tflops: float) -> float:
    """The least time flop FLOPs can take at peak_tflops."""
    return flop / (peak_tflops * 1e12)


def floors(peak_tflops: float, g: Generation = Generation()) -> dict[str, float]:
    """Seconds per unit of work at the peak: a guided UNet step, an image, a LoRA step (batch 8), a classifier step
    (batch 256, 100 classes)."""
    latent = g.image_size // 8
    return {
        "unet_step": floor_seconds((2 if g.guided else 1) * flops.unet_forward(latent), peak_tflops),
        "image": floor_seconds(image_flops(g), peak_tflops),
        "sd_lora_step_b8": floor_seconds(sd_lora_step_flops(8), peak_tflops),
        "classifier_step_b256_c100": floor_seconds(classifier_step_flops(256, 100), peak_tflops),
    }
