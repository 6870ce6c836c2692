"""Zero-shot SD: the baseline DataDream is compared with. Same base model, prompt, steps, guidance and image count
as DataDream, without any fine-tuning."""

from __future__ import annotations

from datadream_bench import api


class ZeroShotConfig(api.MethodConfig):
    images_per_class: int = api.Field(500, description="synthetic images generated per class", ge=1, le=1_000_000)
    num_inference_steps: int = api.Field(50, description="sampling steps of the pipeline's scheduler", ge=1, le=1000)
    guidance_scale: float = api.Field(2.0, description="classifier-free guidance scale", ge=0)
    batch_size: int = api.run_field(10, "images per generation batch (never changes which images are made)", ge=1)


class ZeroShotSD(api.Method):
    name = "zero-shot-sd"
    description = "Stable Diffusion text-to-image from the class prompt, no adaptation (DataDream's baseline)"
    Config = ZeroShotConfig
    reads_shots = False  # text to image from the class prompt: one generated set serves every shot count of a seed
    # The same image counts as DataDream under each profile, so the comparison stays like for like.
    # The demo samples as DataDream's demo does (40 images per class, 25 steps): the same base, prompt and sampler.
    profile_defaults = {"demo": {"images_per_class": 40, "num_inference_steps": 25},
                        "tiny": {"images_per_class": 4, "num_inference_steps": 5}}

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        return sampler.text_to_image(
            batch, num_inference_steps=ctx.config.num_inference_steps, guidance_scale=ctx.config.guidance_scale
        )
