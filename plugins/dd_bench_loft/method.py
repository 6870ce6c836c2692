"""LoFT (LoRA-Fused Training-data generation, Kim et al. 2025): fine-tune one small LoRA on each real image, then
make each synthetic image with a fusion of several of its class's per-image LoRAs, for images that keep features of
particular real images (fidelity) and mix them (diversity).

Adapt: one unit per real image (ctx.shot_units()), trained on its image alone with the class prompt. Plan: the
class's shots taken loras_per_image at a time, every combination once in a seeded order (the code shuffles all
combinations per class), image i using combination i mod their count; the engine merges the combination's LoRAs
with the image's weights (fixed, or drawn per image from its id). Sample: text-to-image with the class prompt.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from datadream_bench import api

from .config import LoftConfig

# Demo backbones (tiny SD pretrained on digits 5-9, 32 px) on a 2-core CPU. A demo cell trains 20 LoRAs (4 shots x
# 5 classes) where DataDream trains 5, so each gets a short schedule: 60 steps of 4 copies of its image (a rank-2
# LoRA's single-image gradient is noisy at batch 1) at lr 2e-2. Measured on seed 0 (synthetic only, top-1): 40 steps
# at batch 1, lr 1e-2: 37.1 (the images mostly the base's digits 5-9); 100 steps at batch 1: 44.9; 60 steps at
# batch 4, lr 2e-2: 53.7, in less adapt time than DataDream's 5 x 200 steps at batch 4. Generation as DataDream's
# demo: 40 images per class, 25 sampling steps.
DEMO = {"epochs": 60, "train_batch_size": 4, "lr": 2e-2, "warmup_steps": 6, "images_per_class": 40,
        "num_inference_steps": 25}
# The tiny random backbones only exercise the mechanics.
TINY = {"epochs": 2, "warmup_steps": 0, "images_per_class": 4, "num_inference_steps": 5}


class Loft(api.Method):
    name = "loft"
    description = ("LoFT: one SD LoRA (rank 2) per real image, then text-to-image from a weighted fusion of two of "
                   "the class's per-image LoRAs")
    Config = LoftConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}
    notes = "LoFT's released code, on the profile's Stable Diffusion; fusion weights and LoRA pairs recorded per image"

    # -- adapt: one LoRA per real image ---------------------------------------------------------------------------

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        k = min(len(shots) for shots in ctx.fewshot.shots)
        if ctx.config.loras_per_image > k:
            # Found before any LoRA is trained: the plan could not fuse that many.
            raise api.UsageError(f"{self.name}: loras_per_image={ctx.config.loras_per_image} needs at least that many "
                                 f"shots per class, and this draw has {k}: use --set loft.loras_per_image={k}")
        return ctx.shot_units()

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        label, shot = ctx.shot_of_unit(unit)
        c = ctx.config
        image = ctx.fewshot.shots[label][shot].path
        # The code's data set is the one image repeated train_batch_size times: each step sees every copy.
        examples = [api.Example(image, ctx.prompt(label))] * c.train_batch_size
        schedule = api.Schedule(lr=c.lr, epochs=c.epochs, batch_size=c.train_batch_size, warmup_steps=c.warmup_steps,
                                betas=(c.adam_beta1, c.adam_beta2), weight_decay=c.weight_decay, eps=c.adam_epsilon,
                                max_grad_norm=c.max_grad_norm)
        targets = api.sd_lora_targets()
        components = ("unet", "text_encoder") if c.train_text_encoder else ("unet",)
        lora = api.LoraSpec(c.rank, c.alpha, {name: targets[name] for name in components})
        views = api.Views(crop="center" if c.center_crop else "random")
        seed = api.seed_from("loft-adapt", ctx.spec.seed, unit)
        with api.Finetuner(ctx.sd_pipeline(), examples, schedule, seed=seed, views=views, lora=lora) as t:
            losses = t.train(progress=lambda done, total: ctx.progress("LoRA steps", done, total))
            weights = t.lora_weights()
        return api.Adaptation(lora=weights, data={"image": image, **api.losses_summary(losses)})

    # -- plan: fusions of per-image LoRAs ---------------------------------------------------------------------------

    def fusions(self, ctx: api.CellContext, label: int) -> list[tuple[int, ...]]:
        """The class's combinations of loras_per_image shots, in an order shuffled by the cell seed and the class."""
        k = len(ctx.fewshot.shots[label])
        combos = list(combinations(range(k), ctx.config.loras_per_image))
        rng = np.random.default_rng(api.seed_from("loft-fusions", ctx.spec.seed, ctx.dataset.classes[label]))
        return [combos[i] for i in rng.permutation(len(combos))]

    def weights(self, ctx: api.CellContext, label: int, index: int) -> tuple[float, ...]:
        """The image's fusion weights: the configured ones, or drawn from its id (flat Dirichlet, summing to 1)."""
        c = ctx.config
        if c.fusion_weights is not None:
            return tuple(float(w) for w in c.fusion_weights)
        rng = np.random.default_rng(api.seed_from("loft-weights", ctx.spec.seed, ctx.dataset.classes[label], index))
        return tuple(round(float(w), 6) for w in rng.dirichlet(np.ones(c.loras_per_image)))

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        """Image i of a class fuses the LoRAs of combination i mod C of its shots. Requests are ordered by
        combination, so the images that share a fusion are made in one batch after one merge."""
        requests = []
        for label in range(len(ctx.dataset.classes)):
            fusions = self.fusions(ctx, label)
            mine = []
            for i in range(ctx.config.images_per_class):
                shots = fusions[i % len(fusions)]
                mix = api.lora_mix(*zip((api.shot_unit(label, j) for j in shots), self.weights(ctx, label, i)))
                mine.append((i % len(fusions), ctx.request(label, i, adapter=mix)))
            requests += [r for _, r in sorted(mine, key=lambda pair: (pair[0], pair[1].index))]
        return requests

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        return sampler.text_to_image(batch, num_inference_steps=ctx.config.num_inference_steps,
                                     guidance_scale=ctx.config.guidance_scale)

    def cost(self, config: LoftConfig, classes: int, shots: int) -> api.MethodCost:
        units = classes * shots
        notes = [] if config.fusion_weights is not None else [
            f"{self.name}: random fusion weights make every image its own merge (batches of one)"]
        return api.MethodCost(images=classes * config.images_per_class, steps=config.num_inference_steps,
                              guidance_scale=config.guidance_scale, adapt_steps=units * config.epochs,
                              adapt_images=units * config.epochs * config.train_batch_size,
                              adapt_text_encoder=config.train_text_encoder, notes=notes)
