"""LoFT's settings. Defaults follow the released code (ExplainableML/LoFT: sd-finetune/run.sh with METHOD=loft,
generation/run.sh and generation/main.py); "[?]" marks what the code does not pin down."""

from __future__ import annotations

from typing import Optional

from pydantic import model_validator

from datadream_bench import api


class LoftConfig(api.MethodConfig):
    # One LoRA per real image: the DreamBooth-LoRA recipe on a single image (no prior preservation).
    rank: int = api.adapt_field(2, "LoRA rank of every adapted layer", ge=1)
    alpha: float = api.adapt_field(2.0, "LoRA alpha (the code sets alpha = rank): updates scaled by alpha / rank",
                                   gt=0)
    train_text_encoder: bool = api.adapt_field(
        False, "also put LoRA on the text encoder's q/k/v/out projections (off in LoFT; on in DataDream)")
    lr: float = api.adapt_field(1e-3, "peak AdamW learning rate of the LoRA parameters", gt=0)
    adam_beta1: float = api.adapt_field(0.9, "AdamW beta1", ge=0, lt=1)
    adam_beta2: float = api.adapt_field(0.999, "AdamW beta2", ge=0, lt=1)
    weight_decay: float = api.adapt_field(1e-2, "AdamW weight decay", ge=0)
    adam_epsilon: float = api.adapt_field(1e-8, "AdamW epsilon", gt=0)
    max_grad_norm: float = api.adapt_field(1.0, "gradients are clipped to this global norm", gt=0)
    warmup_steps: int = api.adapt_field(10, "linear warm-up steps before the cosine decay to zero", ge=0)
    # The code's data set is the image repeated train_batch_size times, so an epoch is one step: 600 epochs.
    epochs: int = api.adapt_field(600, "fine-tuning epochs per real image; an epoch is one step (the image repeated "
                                       "train_batch_size times)", ge=1)
    train_batch_size: int = api.adapt_field(
        1, "copies of the image per step (each with its own noise and timestep)", ge=1)
    # The code center-crops (run.sh CENTER_CROP=True for LoFT): the LoRA sees the one view of its image.
    center_crop: bool = api.adapt_field(True, "center crop after resizing the shorter side (off: random crops)")

    # Generation: each image from a fusion of several of its class's per-image LoRAs.
    images_per_class: int = api.Field(500, description="synthetic images generated per class", ge=1)
    loras_per_image: int = api.Field(
        2, description="per-image LoRAs of the class fused for one image (a float interpolation weight in the code "
                       "fuses pairs; 1: each image from one image's LoRA)", ge=1)
    fusion_weights: Optional[tuple[float, ...]] = api.Field(
        (0.5, 0.5), description="weights of the fused LoRAs, one per LoRA (run.sh: 0.5, 0.5); None: random weights "
                                "drawn per image from a flat Dirichlet (they sum to 1) [?: the paper speaks of random "
                                "fusion; the released run.sh fixes 0.5/0.5]")
    num_inference_steps: int = api.Field(50, description="sampling steps of the pipeline's scheduler", ge=1)
    guidance_scale: float = api.Field(2.0, description="classifier-free guidance scale", ge=0)
    batch_size: int = api.run_field(5, "images per generation batch (never changes which images are made)", ge=1)

    @model_validator(mode="after")
    def _weights_fit(self):
        if self.fusion_weights is not None and len(self.fusion_weights) != self.loras_per_image:
            raise ValueError(f"fusion_weights has {len(self.fusion_weights)} weights for loras_per_image="
                             f"{self.loras_per_image}")
        return self
