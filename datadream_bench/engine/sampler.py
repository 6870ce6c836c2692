"""What a method's sample() gets: the loaded pipeline (LoRA already merged) and one generator per image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from ..method import ImageRequest


class Sampler:
    def __init__(self, pipe, device: str, dtype: torch.dtype, config=None):
        self.pipe = pipe
        self.device = device
        self.dtype = dtype
        self.config = config  # the method's validated Config for this cell (steps, guidance, ...)
        self._img2img = None

    @staticmethod
    def generators(batch: list[ImageRequest]) -> list[torch.Generator]:
        # CPU generators: the initial noise of an image is the same on every device and in every batch.
        return [torch.Generator("cpu").manual_seed(r.seed) for r in batch]

    def text_to_image(self, batch: list[ImageRequest], *, num_inference_steps: int, guidance_scale: float,
                      size: int | None = None) -> list[Image]:
        size = size or self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        out = self.pipe(
            prompt=[r.prompt for r in batch],
            height=size,
            width=size,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=self.generators(batch),
            output_type="pil",
        )
        return out.images

    def img2img_pipeline(self):
        """An image-to-image pipeline over the same components: no second copy of the weights."""
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline

            self._img2img = StableDiffusionImg2ImgPipeline(**self.pipe.components)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img
