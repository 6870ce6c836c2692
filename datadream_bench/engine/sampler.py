"""What a method's sample() gets: the loaded pipeline (the batch's adapters already applied) and one generator per
image, with text-to-image and image-to-image entries that take prompts, prompt embeddings or initial latents."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from ..contract import LoraWeights
from ..errors import UsageError
from .img2img import load_init_image
from .lora import merged_lora
from .tokens import TokenVocabulary, encode_prompts, learned_tokens

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from ..contract import ImageRequest


def _dpm_solver_pp(config):
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")


# Schedulers a method may ask for by name, built from the shared pipeline's scheduler config (its noise schedule and
# prediction type), never replacing the shared pipeline's own scheduler.
SCHEDULERS = {"dpm-solver++": _dpm_solver_pp}


@dataclass
class AppliedAdapter:
    """What the engine applies for a group of requests that name the same adapter: LoRA terms (weights, mix weight),
    merged into the base weights, and learned tokens (placeholder -> vector), added to the text encoder."""

    loras: list[tuple[LoraWeights, float]] = field(default_factory=list)
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)


class Sampler:
    def __init__(self, pipe, device: str = "cpu", dtype: torch.dtype = torch.float32):
        self.pipe = pipe
        self.device = device
        self.dtype = dtype
        self.vocabulary: TokenVocabulary | None = None  # set while learned tokens are installed
        self._img2img: dict[str | None, object] = {}

    @staticmethod
    def generators(batch: list[ImageRequest]) -> list[torch.Generator]:
        # CPU generators: the initial noise of an image is the same on every device and in every batch.
        return [torch.Generator("cpu").manual_seed(r.seed) for r in batch]

    @property
    def image_size(self) -> int:
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    # -- adapters -------------------------------------------------------------------------------------------------

    @contextmanager
    def adapted(self, adapter: AppliedAdapter | LoraWeights | None):
        """Within the block the pipeline samples with the adapter: its LoRA terms merged (one matmul per layer for
        any mix) and its learned tokens known to the text encoder. Afterwards the pipeline is exactly as before."""
        if isinstance(adapter, LoraWeights):
            adapter = AppliedAdapter(loras=[(adapter, 1.0)])
        with ExitStack() as stack:
            if adapter is not None and adapter.loras:
                stack.enter_context(merged_lora({"unet": self.pipe.unet, "text_encoder": self.pipe.text_encoder},
                                                adapter.loras))
            if adapter is not None and adapter.tokens:
                self.vocabulary, _ = stack.enter_context(
                    learned_tokens(self.pipe.text_encoder, self.pipe.tokenizer, adapter.tokens))
                stack.callback(setattr, self, "vocabulary", None)
            yield self

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Prompt embeddings as the pipeline computes them, with the installed learned tokens (if any) understood."""
        if self.vocabulary is None:
            embeds, _ = self.pipe.encode_prompt(prompts, self.device, 1, False)
            return embeds
        return encode_prompts(self.pipe.text_encoder, self.vocabulary, prompts, self.device)

    def _prompt_args(self, batch: list[ImageRequest], prompt_embeds: torch.Tensor | None) -> dict:
        if prompt_embeds is None and self.vocabulary is not None:  # learned tokens: only we can tokenize them
            prompt_embeds = self.encode_prompts([r.prompt for r in batch])
        if prompt_embeds is None:
            return {"prompt": [r.prompt for r in batch]}
        if prompt_embeds.shape[0] != len(batch):
            raise ValueError(f"{prompt_embeds.shape[0]} prompt embeddings for {len(batch)} requests")
        return {"prompt_embeds": prompt_embeds}

    # -- text to image --------------------------------------------------------------------------------------------

    def noise(self, batch: list[ImageRequest], size: int | None = None) -> torch.Tensor:
        """The initial latents text_to_image would draw for the batch (before the scheduler's scaling): each image's
        from its own generator. A method may change them and pass them back as `latents`."""
        from diffusers.utils.torch_utils import randn_tensor

        size = size or self.image_size
        f = self.pipe.vae_scale_factor
        shape = (len(batch), self.pipe.unet.config.in_channels, size // f, size // f)
        return randn_tensor(shape, generator=self.generators(batch), device=torch.device(self.device),
                            dtype=self.pipe.text_encoder.dtype)

    def text_to_image(self, batch: list[ImageRequest], *, num_inference_steps: int, guidance_scale: float,
                      size: int | None = None, prompt_embeds: torch.Tensor | None = None,
                      latents: torch.Tensor | None = None) -> list[Image]:
        """One image per request from its prompt (or the given prompt embeddings, one row per request), starting
        from the request's own noise (or the given initial latents, see noise())."""
        size = size or self.image_size
        if latents is not None and latents.shape[0] != len(batch):
            raise ValueError(f"{latents.shape[0]} initial latents for {len(batch)} requests")
        out = self.pipe(
            **self._prompt_args(batch, prompt_embeds),
            height=size,
            width=size,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=self.generators(batch),
            latents=latents,
            output_type="pil",
        )
        return out.images

    # -- image to image -------------------------------------------------------------------------------------------

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

    def image_to_image(self, batch: list[ImageRequest], *, num_inference_steps: int, guidance_scale: float,
                       strength: float | Sequence[float] | None = None, scheduler: str | None = None,
                       fit: str = "pad", size: int | None = None, init_images: list[Image] | None = None,
                       prompt_embeds: torch.Tensor | None = None) -> list[Image]:
        """SDEdit: each request's init image, noised to its strength of the schedule, denoised with its prompt.

        strength: one value for the batch, one per request, or None for each request's own (request.strength), so a
        method can plan every image at its own noise level; the batch is sampled in runs of equal strength. Init
        images come from request.init_image brought to a square by `fit` (see engine.img2img), unless the method
        passes its own. When a strength leaves no denoising step (int(steps * strength) == 0), the image only goes
        through the VAE and back.
        """
        strengths = self._strengths(batch, strength)
        size = size or self.image_size
        init = init_images if init_images is not None else self.init_images(batch, size, fit)
        if len(init) != len(batch):
            raise ValueError(f"{len(init)} init images for {len(batch)} requests")
        prompt = self._prompt_args(batch, prompt_embeds)
        out: list = [None] * len(batch)
        for s in sorted(set(strengths)):
            rows = [i for i, v in enumerate(strengths) if v == s]
            part = [batch[i] for i in rows]
            if int(num_inference_steps * s) == 0:
                images = self.vae_round_trip([init[i] for i in rows])
            else:
                part_prompt = {k: ([v[i] for i in rows] if isinstance(v, list) else v[rows]) for k, v in prompt.items()}
                images = self.img2img_pipeline(scheduler)(
                    **part_prompt,
                    image=[init[i] for i in rows],
                    strength=s,
                    num_inference_steps=num_inference_steps,
                    guidance_scale=guidance_scale,
                    generator=self.generators(part),
                    output_type="pil",
                ).images
            for i, image in zip(rows, images):
                out[i] = image
        return out

    @staticmethod
    def _strengths(batch: list[ImageRequest], strength) -> list[float]:
        if strength is None:
            missing = [r.id for r in batch if r.strength is None]
            if missing:
                raise ValueError(f"image_to_image was given no strength and requests {missing[:3]} carry none")
            values = [r.strength for r in batch]
        elif isinstance(strength, (int, float)):
            values = [float(strength)] * len(batch)
        else:
            values = [float(s) for s in strength]
            if len(values) != len(batch):
                raise ValueError(f"{len(values)} strengths for {len(batch)} requests")
        bad = [v for v in values if not 0.0 <= v <= 1.0]
        if bad:
            raise ValueError(f"strength must be within [0, 1], got {bad[0]}")
        return values

    @torch.no_grad()
    def vae_round_trip(self, images: list[Image]) -> list[Image]:
        """Encode to the latent mean and decode: what image-to-image returns when no noise is added."""
        pipe = self.img2img_pipeline()
        vae = pipe.vae
        x = pipe.image_processor.preprocess(images).to(self.device, vae.dtype)
        latents = vae.encode(x).latent_dist.mode()
        decoded = vae.decode(latents).sample
        return pipe.image_processor.postprocess(decoded, output_type="pil")
