"""DataDream (ECCV 2024): fine-tune Stable Diffusion with LoRA on the few real shots, then generate from it.

datadream-cls trains one LoRA per class on that class's shots; datadream-dset trains one LoRA on every class's
shots, each image with its own class prompt. Both generate with the class prompt through their adapted pipeline.
"""

from __future__ import annotations

from datadream_bench import api

from .config import DataDreamConfig
from .trainer import Example, LoraTrainer

DATASET_UNIT = "all-classes"

# Settings for the shipped demo backbones (tiny SD pretrained on digits 5-9) on a 2-core CPU, where the paper's
# lr 1e-4 for 400 steps moves the tiny model too little (20 steps learn nothing; lr 1e-2 diverges). A training batch
# of 4 = the demo's 4 shots makes an epoch one step per class for both methods, so 200 epochs give both 200 steps
# per class, as the paper's 200 epochs give both 400 steps per class at 16 shots and batch 8. Measured on one seed:
# 300 epochs reach 68/72 (cls/dset, synthetic only) against 62/44 for 200 epochs (dset at batch 20); 200 epochs at
# batch 4 are what fits the 3-seed demo grid into minutes. 25 sampling steps (50 in the paper) halve generation.
DEMO = {"epochs": 200, "lr": 3e-3, "warmup_steps": 20, "train_batch_size": 4, "images_per_class": 40,
        "num_inference_steps": 25}
# The tiny random backbones only exercise the mechanics: a couple of steps and a handful of short samples.
TINY = {
    "epochs": 2, "warmup_steps": 0, "lr": 1e-3, "train_batch_size": 4, "images_per_class": 4, "num_inference_steps": 5,
}


def generation_config(sampler):
    """The cell's method config, which the runner hands to sample() on the sampler."""
    config = getattr(sampler, "config", None)
    if config is None:
        raise TypeError("sample() needs the cell's method config on the sampler (sampler.config); none was given")
    return config


class _DataDream(api.Method):
    Config = DataDreamConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}

    def train_unit(self, ctx: api.CellContext, unit: str, examples: list[Example]) -> api.Adaptation:
        pipe = ctx.sd_pipeline()
        with LoraTrainer(pipe, examples, ctx.config, seed=api.seed_from("datadream-adapt", ctx.spec.seed, unit)) as t:
            # One progress line for the steps of whichever unit is training (the runner counts the units).
            losses = t.train(progress=lambda done, total: ctx.progress("LoRA steps", done, total))
            weights = t.weights()
        tail = max(1, len(losses) // 10)
        return api.Adaptation(
            lora=weights,
            data={
                "images": len(examples),
                "steps": len(losses),
                "loss_first_tenth": sum(losses[:tail]) / tail,  # the loss is noisy step to step: average a tenth
                "loss_last_tenth": sum(losses[-tail:]) / tail,
            },
        )

    def examples(self, ctx: api.CellContext, label: int) -> list[Example]:
        return [Example(s.path, ctx.prompt(label)) for s in ctx.fewshot.shots[label]]

    def sample(self, sampler: api.Sampler, batch: list[api.ImageRequest]):
        config = generation_config(sampler)
        return sampler.text_to_image(
            batch, num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale
        )


class DataDreamClassWise(_DataDream):
    name = "datadream-cls"
    description = "DataDream class-wise: one Stable Diffusion LoRA per class on its few shots, then text-to-image"

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        return ctx.class_units()

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        return self.train_unit(ctx, unit, self.examples(ctx, ctx.class_of_unit(unit)))

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        n = ctx.config.images_per_class
        return [
            ctx.request(label, i, adapter=api.class_unit(label))
            for label in range(len(ctx.dataset.classes))
            for i in range(n)
        ]


class DataDreamDatasetWise(_DataDream):
    name = "datadream-dset"
    description = "DataDream dataset-wise: one Stable Diffusion LoRA on all classes' shots, then text-to-image"

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        return [DATASET_UNIT]

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        if unit != DATASET_UNIT:
            raise api.UsageError(f"{self.name}: no adapt unit {unit!r}; its one unit is {DATASET_UNIT!r}")
        examples = [e for label in range(len(ctx.dataset.classes)) for e in self.examples(ctx, label)]
        return self.train_unit(ctx, unit, examples)

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        n = ctx.config.images_per_class
        return [
            ctx.request(label, i, adapter=DATASET_UNIT) for label in range(len(ctx.dataset.classes)) for i in range(n)
        ]
