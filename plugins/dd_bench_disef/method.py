"""DISEF-style generation: each image starts from a real shot (padded to a square), is prompted with a caption of a
real shot of its class, sampled with DPM-Solver++ from part-way through the schedule, and kept only if CLIP
classifies it as its own class, until the class has spent filter_class_budget candidates (then every further image
of the class is kept, as in the original; filter_timeout=image gives up per image instead).

Captions are the adapt stage: one unit per class, each shot captioned once, kept as an artifact and reused by every
image, every setting and every rerun.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from datadream_bench import api

from .config import DisefConfig

# The demo's CLIP never saw the target digits, so it rejects often: a class budget of 80 candidates keeps DISEF's
# worst case (80 + 40 candidates x 15 steps per class, as 3 per image would) within zero-shot SD's 40 x 50 steps.
DEMO = {"captioner": "template", "images_per_class": 40, "filter_model": "", "filter_class_budget": 80}
TINY = {"captioner": "template", "images_per_class": 4, "num_inference_steps": 4, "filter_model": "",
        "filter_class_budget": 8}


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Disef(api.Method):
    name = "disef"
    description = "DISEF-style: img2img from a padded real shot with a caption prompt (DPM-Solver++), CLIP-filtered"
    Config = DisefConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}
    notes = ("DISEF captioned with LLaVA-1.5 and filtered with open_clip ViT-H-14; here a captioner plugin "
             "(BLIP or the template) and a transformers-format CLIP; Stable Diffusion is the profile's")

    def required_models(self, config: DisefConfig, clip_model: str) -> list[tuple[str, str, str]]:
        needs = []
        if api.get_captioner(config.captioner).needs_model:
            needs.append(("captioner_model", "captioner", config.captioner_model))
        if config.clip_filter:
            needs.append(("filter_model", "clip", config.filter_model or clip_model))
        return needs

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        return ctx.class_units()

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        label = ctx.class_of_unit(unit)
        shots = ctx.fewshot.shots[label]
        captioner = api.get_captioner(ctx.config.captioner)
        # The class as prompts spell it (DataDream's names on the paper datasets), like every other prompt.
        captions = api.run_captioner(captioner, [api.load_rgb(s.path) for s in shots],
                                     ctx.dataset.prompt_name(label),
                                     source=ctx.config.captioner_model if captioner.needs_model else "",
                                     device=ctx.device)
        return api.Adaptation(data={"captioner": captioner.name, "shots": [s.path for s in shots],
                                    "shot_digests": [_digest(s.path) for s in shots], "captions": captions})

    def captions(self, ctx: api.CellContext, label: int) -> list[str]:
        adaptation = ctx.adaptations.get(api.class_unit(label))
        if adaptation is None:
            raise RuntimeError(f"{self.name}: no captions for class {label}; the adapt stage must run before plan()")
        # By content: the same shots under another spelling of the data root (or another copy) are the same shots.
        if adaptation.data.get("shot_digests") != [_digest(s.path) for s in ctx.fewshot.shots[label]]:
            raise RuntimeError(f"{self.name}: the captions of class {label} were made for other shots")
        return adaptation.data["captions"]

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        """Image i of a class starts from shot i mod k; its prompt is the caption at the same place of the class's
        captions shuffled by a permutation seeded by the cell seed and the class."""
        n = ctx.config.images_per_class
        requests = []
        for label, shots in enumerate(ctx.fewshot.shots):
            captions = self.captions(ctx, label)
            order = np.random.default_rng(api.seed_from("disef-captions", ctx.spec.seed, ctx.dataset.classes[label]))
            shuffled = [captions[j] for j in order.permutation(len(captions))]
            for i in range(n):
                requests.append(ctx.request(label, i, prompt=shuffled[i % len(shots)],
                                            init_image=shots[i % len(shots)].path))
        return requests

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        config = ctx.config
        return sampler.image_to_image(batch, strength=config.strength, num_inference_steps=config.num_inference_steps,
                                      guidance_scale=config.guidance_scale, scheduler=config.scheduler,
                                      fit=config.init_fit)

    def cost(self, config: DisefConfig, classes: int, shots: int) -> api.MethodCost:
        notes = [f"{self.name}: captioning (the adapt stage) is not counted"]
        if config.clip_filter:
            bound = ("up to filter_class_budget more per class" if config.filter_timeout == "class"
                     else "up to filter_max_attempts each")
            notes.append(f"{self.name}: each image counted once; images its filter rejects cost more ({bound}), "
                         "and the filter's own CLIP is not counted")
        return api.MethodCost(images=classes * config.images_per_class, steps=config.num_inference_steps,
                              guidance_scale=config.guidance_scale, strength=config.strength, notes=notes)

    def image_filter(self, ctx: api.CellContext):
        if not ctx.config.clip_filter:
            return None
        per_class = ctx.config.filter_timeout == "class"
        return api.clip_filter(ctx, ctx.config.filter_model, rule="argmax", max_attempts=ctx.config.filter_max_attempts,
                               class_budget=ctx.config.filter_class_budget if per_class else None,
                               class_size=ctx.config.images_per_class)
