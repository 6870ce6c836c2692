"""IsSynth-style "real guidance": each image starts from a real shot of its class, noised to an early point of the
schedule and denoised with the class prompt (SDEdit-style img2img). The original ran on GLIDE; this one on the
profile's Stable Diffusion. Optionally, CLIP keeps an image only if it gives the image's class more than 1/C."""

from __future__ import annotations

from datadream_bench import api

from .config import IsSynthConfig, strength_for_shots

# 40 images per class, as DataDream's demo; 50 steps at the 4-shot strength 0.35 are 17 denoising steps.
DEMO = {"images_per_class": 40}
TINY = {"images_per_class": 4, "num_inference_steps": 5}


class IsSynth(api.Method):
    name = "issynth"
    description = "IsSynth-style real guidance: img2img from a real shot of the class, noise level by shot count"
    Config = IsSynthConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}
    notes = ("IsSynth real guidance ran on GLIDE; here it runs on the profile's Stable Diffusion (img2img); "
             "the optional filter uses a transformers CLIP (the original used CLIP RN50)")

    def strength(self, config: IsSynthConfig, shots: int) -> float:
        return config.strength if config.strength is not None else strength_for_shots(shots)

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        """Image i of a class starts from shot i mod k of that class (round-robin over the draw's order)."""
        n = ctx.config.images_per_class
        requests = []
        for label, shots in enumerate(ctx.fewshot.shots):
            for i in range(n):
                requests.append(ctx.request(label, i, init_image=shots[i % len(shots)].path))
        return requests

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        config = ctx.config
        return sampler.image_to_image(batch, strength=self.strength(config, ctx.fewshot.k),
                                      num_inference_steps=config.num_inference_steps,
                                      guidance_scale=config.guidance_scale, fit=config.init_fit)

    def cost(self, config: IsSynthConfig, classes: int, shots: int) -> api.MethodCost:
        return api.MethodCost(images=classes * config.images_per_class, steps=config.num_inference_steps,
                              guidance_scale=config.guidance_scale, strength=self.strength(config, shots),
                              notes=[f"{self.name}: its filter's retries and CLIP are not counted"]
                              if config.clip_filter else [])

    def required_models(self, config: IsSynthConfig, clip_model: str) -> list[tuple[str, str, str]]:
        return [("filter_model", "clip", config.filter_model or clip_model)] if config.clip_filter else []

    def image_filter(self, ctx: api.CellContext):
        if not ctx.config.clip_filter:
            return None
        return api.clip_filter(ctx, ctx.config.filter_model, rule="above-chance",
                               max_attempts=ctx.config.filter_max_attempts)
