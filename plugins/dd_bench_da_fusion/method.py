"""DA-Fusion (Trabucco et al., "Effective Data Augmentation With Diffusion Models", ICLR 2024): learn one new token
per class by textual inversion on the class's shots, then make each synthetic image from a real shot by img2img
(SDEdit) prompted with the token, at a strength drawn per image from a short list.

Adapt: one unit per class; only the token's embedding trains (the base models never change). Plan: images_per_shot
images from every shot, each with its strength drawn from its id. The engine adds the class's token to the text
encoder for the requests that name the class's unit, and removes it afterwards.
"""

from __future__ import annotations

import numpy as np

from datadream_bench import api

from .config import DaFusionConfig

# The 27 object templates of textual inversion that DA-Fusion's fine-tuning draws a prompt from at each step.
TEMPLATES = (
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}", "a cropped photo of a {}",
    "a photo of the {}", "a good photo of the {}", "a photo of one {}", "a close-up photo of the {}",
    "a rendition of the {}", "a photo of the clean {}", "a rendition of a {}", "a photo of a nice {}",
    "a good photo of a {}", "a photo of the nice {}", "a photo of the small {}", "a photo of the weird {}",
    "a photo of the large {}", "a photo of a cool {}", "a photo of a small {}",
)

# Demo backbones (tiny SD pretrained on digits 5-9, 32 px) on a 2-core CPU: 200 token steps per class at batch 4
# (DataDream's demo trains 200 LoRA steps per class) at lr 2e-2, ten times the paper's rate for a text encoder of 64
# dimensions instead of 1024 [?: not swept]. Measured on seed 0 (synthetic only, top-1): 200 steps 49.6, 500 steps
# 41.3, so more steps buy nothing here. 40 steps of the full schedule at the paper's strengths (mean 0.625) are 25
# denoising steps per image on average, DataDream's demo count; 10 images per shot = 40 per class at 4 shots.
DEMO = {"steps": 200, "lr": 2e-2, "num_inference_steps": 40}
# The tiny random backbones only exercise the mechanics.
TINY = {"steps": 2, "images_per_shot": 2, "num_inference_steps": 4}


def token_of(class_name: str) -> str:
    """The class's placeholder, as the code names it: "<name_with_underscores>"."""
    return "<" + class_name.replace(" ", "_") + ">"


class DaFusion(api.Method):
    name = "da-fusion"
    description = ("DA-Fusion: a textual-inversion token per class, then img2img of each real shot with the token at "
                   "strengths drawn from 0.25/0.5/0.75/1.0")
    Config = DaFusionConfig
    profile_defaults = {"demo": DEMO, "tiny": TINY}
    notes = ("DA-Fusion ran on SD 1.4 with a ResNet-50 classifier mixing real and synthetic images (p=0.5); here the "
             "profile's Stable Diffusion and the shared classifier; images stay at the sampler's size")

    # -- adapt: a token per class -----------------------------------------------------------------------------------

    def adapt_units(self, ctx: api.CellContext) -> list[str]:
        return ctx.class_units()

    def adapt(self, ctx: api.CellContext, unit: str) -> api.Adaptation:
        label = ctx.class_of_unit(unit)
        c = ctx.config
        token = token_of(ctx.dataset.classes[label])
        pipe = ctx.sd_pipeline()
        start = api.initial_embedding(pipe.text_encoder, pipe.tokenizer, c.initializer)
        prompts = tuple(t.format(token) for t in TEMPLATES)
        examples = [api.Example(s.path, prompts) for s in ctx.fewshot.shots[label]]
        schedule = api.Schedule(lr=c.lr, steps=c.steps, batch_size=c.train_batch_size, warmup_steps=c.warmup_steps,
                                decay="constant", betas=(c.adam_beta1, c.adam_beta2), weight_decay=c.weight_decay,
                                eps=c.adam_epsilon, max_grad_norm=None)
        # The code resizes each image to the square (bicubic, no crop) and flips it half the time.
        views = api.Views(crop="resize", flip=c.flip, resample="bicubic")
        seed = api.seed_from("da-fusion-adapt", ctx.spec.seed, unit)
        with api.Finetuner(pipe, examples, schedule, seed=seed, views=views, tokens={token: start}) as t:
            losses = t.train(progress=lambda done, total: ctx.progress("token steps", done, total))
            learned = t.token_embeddings()
        moved = float((learned[token] - start).norm())
        return api.Adaptation(tokens=learned, data={"token": token, "images": len(examples),
                                                     "embedding_moved": moved, **api.losses_summary(losses)})

    # -- plan: img2img of every shot ------------------------------------------------------------------------------

    def strength(self, ctx: api.CellContext, label: int, index: int) -> float:
        """The image's strength, drawn from the configured list with its probabilities, from the image's id."""
        c = ctx.config
        rng = np.random.default_rng(api.seed_from("da-fusion-strength", ctx.spec.seed, ctx.dataset.classes[label],
                                                  index))
        return float(c.strengths[rng.choice(len(c.strengths), p=np.asarray(c.strength_probs))])

    def plan(self, ctx: api.CellContext) -> list[api.ImageRequest]:
        """Image j * M + m of a class starts from the class's shot j (M = images_per_shot). Requests are ordered by
        strength within a class, so a batch runs at one strength."""
        c = ctx.config
        requests = []
        for label, shots in enumerate(ctx.fewshot.shots):
            prompt = c.prompt.format(token=token_of(ctx.dataset.classes[label]))
            mine = []
            for j, shot in enumerate(shots):
                for m in range(c.images_per_shot):
                    index = j * c.images_per_shot + m
                    mine.append(ctx.request(label, index, prompt=prompt, adapter=api.class_unit(label),
                                            init_image=shot.path, strength=self.strength(ctx, label, index)))
            requests += sorted(mine, key=lambda r: (r.strength, r.index))
        return requests

    def sample(self, ctx: api.CellContext, sampler: api.Sampler, batch: list[api.ImageRequest]):
        # Each request carries its own strength; the code stretches the real image to the square.
        return sampler.image_to_image(batch, num_inference_steps=ctx.config.num_inference_steps,
                                      guidance_scale=ctx.config.guidance_scale, fit="stretch")

    def cost(self, config: DaFusionConfig, classes: int, shots: int) -> api.MethodCost:
        mean_strength = sum(s * p for s, p in zip(config.strengths, config.strength_probs))
        return api.MethodCost(images=classes * shots * config.images_per_shot, steps=config.num_inference_steps,
                              guidance_scale=config.guidance_scale, strength=mean_strength,
                              adapt_steps=classes * config.steps,
                              adapt_images=classes * config.steps * config.train_batch_size, adapt_text_encoder=True,
                              notes=[f"{self.name}: img2img counted at the mean strength {mean_strength:g}"])
