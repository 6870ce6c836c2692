"""DataDream (ECCV 2024): fine-tune Stable Diffusion with LoRA on the few real shots, then generate from it.

datadream-cls trains one LoRA per class on that class's shots; datadream-dset trains one LoRA on every class's
shots, each image with its own class prompt. Both generate with the class prompt through their adapted pipeline.
"""

from __future__ import annotations

from datadream_bench import api

from .config import DataDreamConfig

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


def finetuner(pipe, examples: list[api.Example], config: DataDreamConfig, seed: int) -> api.Finetuner:
    """The DreamBooth-LoRA recipe with DataDream's settings: LoRA on the UNet's attention (and the text encoder's),
    random crops, no flips, AdamW with linear warm-up and cosine decay, gradients clipped."""
    targets = api.sd_lora_targets()
    components = ("unet", "text_encoder") if config.train_text_encoder else ("unet",)
    schedule = api.Schedule(lr=config.lr, epochs=config.epochs, batch_size=config.train_batch_size,
                            warmup_steps=config.warmup_steps, betas=(config.adam_beta1, config.adam_beta2),
                            weight_decay=config.weight_decay, eps=config.adam_epsilon,
                            max_grad_norm=config.max_grad_norm)
    lora = api.LoraSpec(config.rank, config.alpha, {c: targets[c] for c in components})
    return api.Finetuner(pipe, examples, schedule, seed=seed, views=api.Views(crop="random"), lora=lora)


class _DataDream(api.Method):
    Config = DataDreamConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}

    def train_unit(self, ctx: api.CellContext, unit: str, examples: list[api.Example]) -> api.Adaptation:
        seed = api.seed_from("datadream-adapt", ctx.spec.seed, unit)
        with finetuner(ctx.sd_pipeline(), examples, ctx.config, seed) as t:
            # One progress line for the steps of whichever unit is training (the runner counts the units).
            losses = t.train(progress=lambda done, total: ctx.progress("LoRA steps", done, total))
            weights = t.lora_weights()
        return api.Adaptation(lora=weights, data={"images": len(examples), **api.losses_summary(losses)})

    def examples(self, ctx: api.CellContext, label: int) -> list[api.Example]:
        return [api.Example(s.path, ctx.prompt(label)) for s in ctx.fewshot.shots[label]]

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        return sampler.text_to_image(
            batch, num_inference_steps=ctx.config.num_inference_steps, guidance_scale=ctx.config.guidance_scale
        )

    def unit_cost(self, config: DataDreamConfig, classes: int, units: int, images_per_unit: int) -> api.MethodCost:
        steps_per_epoch = -(-images_per_unit // config.train_batch_size)
        return api.MethodCost(images=classes * config.images_per_class, steps=config.num_inference_steps,
                              guidance_scale=config.guidance_scale, adapt_steps=units * config.epochs * steps_per_epoch,
                              adapt_images=units * config.epochs * images_per_unit,
                              adapt_text_encoder=config.train_text_encoder)


class DataDreamClassWise(_DataDream):
    name = "datadream-cls"
    description = "DataDream class-wise: one Stable Diffusion LoRA per class on its few shots, then text-to-image"

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        return ctx.class_units()

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        return self.train_unit(ctx, unit, self.examples(ctx, ctx.class_of_unit(unit)))

    def cost(self, config: DataDreamConfig, classes: int, shots: int) -> api.MethodCost:
        return self.unit_cost(config, classes, units=classes, images_per_unit=shots)

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

    def cost(self, config: DataDreamConfig, classes: int, shots: int) -> api.MethodCost:
        return self.unit_cost(config, classes, units=1, images_per_unit=classes * shots)

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        n = ctx.config.images_per_class
        return [
            ctx.request(label, i, adapter=DATASET_UNIT) for label in range(len(ctx.dataset.classes)) for i in range(n)
        ]
