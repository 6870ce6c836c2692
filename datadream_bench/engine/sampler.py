"""What a method's sample() gets: the loaded pipeline (LoRA already merged) and one generator per image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import UsageError
from .img2img import load_init_image

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from ..method import ImageRequest


def _dpm_solver_pp(config):
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")


# Schedulers a method may ask for by name, built from the shared pipeline's scheduler config (its noise schedule and
# prediction type), never replacing the shared pipeline's own scheduler.
SCHEDULERS = {"dpm-solver++": _dpm_solver_pp}


class Sampler:
    def __init__(self, pipe, device: str, dtype: torch.dtype, config=None, context=None):
        self.pipe = pipe
        self.device = device
        self.dtype = dtype
        self.config = config  # the method's validated Config for this cell (steps, guidance, ...)
        self.context = context  # the cell's CellContext (shot count, classes), when the runner samples
        self._img2img: dict[str | None, object] = {}

    @staticmethod
    def generators(batch: list[ImageRequest]) -> list[torch.Generator]:
        # CPU generators: the initial noise of an image is the same on every device and in every batch.
        return [torch.Generator("cpu").manual_seed(r.seed) for r in batch]

    @property
    def image_size(self) -> int:
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    def text_to_image(self, batch: list[ImageRequest], *, num_inference_steps: int, guidance_scale: float,
                      size: int | None = None) -> list[Image]:
        size = size or self.image_size
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

    def img2img_pipeline(self, scheduler: str | None = None):
        """An image-to-image pipeline over the same components: no second copy of the weights.

        With a scheduler name (see SCHEDULERS), a view whose scheduler alone is its own: the shared pipeline, and
        every other method's sampling, keep theirs.
        """
        if scheduler not in self._img2img:
            from diffusers import StableDiffusionImg2ImgPipeline

            components = dict(self.pipe.components)
            if scheduler is not None:
                if scheduler not in SCHEDULERS:
                    raise UsageError(f"unknown scheduler {scheduler!r}; available: {', '.join(SCHEDULERS)}")
                components["scheduler"] = SCHEDULERS[scheduler](self.pipe.scheduler.config)
            pipe = StableDiffusionImg2ImgPipeline(**components)
            pipe.set_progress_bar_config(disable=True)
            self._img2img[scheduler] = pipe
        return self._img2img[scheduler]

    def init_images(self, batch: list[ImageRequest], size: int, fit: str) -> list[Image]:
        missing = [r.id for r in batch if not r.init_image]
        if missing:
            raise ValueError(f"image_to_image needs an init_image on every request; {missing[:3]} have none")
        return [load_init_image(r.init_image, size, fit) for r in batch]

    def image_to_image(self, batch: list[ImageRequest], *, strength: float, num_inference_steps: int,
                       guidance_scale: float, scheduler: str | None = None, fit: str = "pad",
                       size: int | None = None, init_images: list[Image] | None = None) -> list[Image]:
        """SDEdit: each request's init image, noised to `strength` of the schedule, denoised with its prompt.

        Init images come from request.init_image brought to a square by `fit` (see engine.img2img), unless the
        method passes its own. When strength leaves no denoising step (int(steps * strength) == 0), the image
        only goes through the VAE and back.
        """
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be within [0, 1], got {strength}")
        size = size or self.image_size
        init = init_images if init_images is not None else self.init_images(batch, size, fit)
        if len(init) != len(batch):
            raise ValueError(f"{len(init)} init images for {len(batch)} requests")
        if int(num_inference_steps * strength) == 0:
            return self.vae_round_trip(init)
        out = self.img2img_pipeline(scheduler)(
            prompt=[r.prompt for r in batch],
            image=init,
            strength=strength,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=self.generators(batch),
            output_type="pil",
        )
        return out.images

    @torch.no_grad()
    def vae_round_trip(self, images: list[Image]) -> list[Image]:
        """Encode to the latent mean and decode: what image-to-image returns when no noise is added."""
        pipe = self.img2img_pipeline()
        vae = pipe.vae
        x = pipe.image_processor.preprocess(images).to(self.device, vae.dtype)
        latents = vae.encode(x).latent_dist.mode()
        decoded = vae.decode(latents).sample
        return pipe.image_processor.postprocess(decoded, output_type="pil")
