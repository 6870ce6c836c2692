"""DataDream's settings. Defaults are the published ones; profiles replace some of them (see method.py)."""

from __future__ import annotations

from datadream_bench import api


class DataDreamConfig(api.MethodConfig):
    # LoRA on Stable Diffusion (the diffusers DreamBooth-LoRA recipe, no prior preservation).
    rank: int = api.adapt_field(16, "LoRA rank of every adapted layer", ge=1)
    alpha: float = api.adapt_field(16.0, "LoRA alpha: the update is scaled by alpha / rank", gt=0)
    train_text_encoder: bool = api.adapt_field(
        True, "also put LoRA on the text encoder's q/k/v/out projections (off: only the UNet's attention)"
    )
    lr: float = api.adapt_field(1e-4, "peak AdamW learning rate of the LoRA parameters", gt=0)
    adam_beta1: float = api.adapt_field(0.9, "AdamW beta1", ge=0, lt=1)
    adam_beta2: float = api.adapt_field(0.999, "AdamW beta2", ge=0, lt=1)
    weight_decay: float = api.adapt_field(1e-2, "AdamW weight decay", ge=0)
    adam_epsilon: float = api.adapt_field(1e-8, "AdamW epsilon", gt=0)
    max_grad_norm: float = api.adapt_field(1.0, "gradients are clipped to this global norm", gt=0)
    warmup_steps: int = api.adapt_field(100, "linear warm-up steps before the cosine decay to zero", ge=0,
                                        le=10_000_000)
    epochs: int = api.adapt_field(
        200, "passes over the unit's images; steps = epochs * ceil(images / train_batch_size)", ge=1, le=100_000
    )
    train_batch_size: int = api.adapt_field(
        8, "images per fine-tuning step (the last batch of an epoch may be smaller)", ge=1
    )

    # Generation with the adapted pipeline.
    images_per_class: int = api.Field(500, description="synthetic images generated per class", ge=1, le=1_000_000)
    num_inference_steps: int = api.Field(50, description="sampling steps of the pipeline's scheduler", ge=1, le=1000)
    guidance_scale: float = api.Field(2.0, description="classifier-free guidance scale", ge=0)
    batch_size: int = api.run_field(10, "images per generation batch (never changes which images are made)", ge=1)
