"""DA-Fusion's settings. Defaults follow the released code (brandontrabucco/da-fusion: fine_tune.py with
scripts/fine_tuning/*.sh, train_classifier.py with the scripts/textual_inversion and cutmix_ablation launchers,
semantic_aug/augmentations/textual_inversion.py); "[?]" marks what the code does not pin down."""

from __future__ import annotations

from pydantic import model_validator

from datadream_bench import api


class DaFusionConfig(api.MethodConfig):
    # Textual inversion: one new token per class, trained on the class's shots; nothing else changes.
    initializer: str = api.adapt_field(
        "the", "word whose embedding the class token starts from (the mean of its tokens' rows when the tokenizer "
               "splits it)")
    steps: int = api.adapt_field(1000, "textual-inversion steps per class (max_train_steps)", ge=1)
    train_batch_size: int = api.adapt_field(4, "images per step", ge=1)
    lr: float = api.adapt_field(
        2e-3, "AdamW learning rate of the token embedding: 5e-4 scaled by the batch of 4 (--scale_lr)", gt=0)
    warmup_steps: int = api.adapt_field(0, "linear warm-up steps of the otherwise constant rate", ge=0)
    adam_beta1: float = api.adapt_field(0.9, "AdamW beta1", ge=0, lt=1)
    adam_beta2: float = api.adapt_field(0.999, "AdamW beta2", ge=0, lt=1)
    weight_decay: float = api.adapt_field(1e-2, "AdamW weight decay (on the token row)", ge=0)
    adam_epsilon: float = api.adapt_field(1e-8, "AdamW epsilon", gt=0)
    flip: float = api.adapt_field(0.5, "probability of a horizontal flip of a training image", ge=0, le=1)

    # Generation: img2img (SDEdit) of every real shot with the class token, at a strength drawn per image.
    images_per_shot: int = api.Field(10, description="synthetic images made from each real shot (M, --num-synthetic)",
                                     ge=1)
    strengths: tuple[float, ...] = api.Field(
        (1.0, 0.75, 0.5, 0.25), description="img2img strengths an image's is drawn from (the paper's t0 choices)")
    strength_probs: tuple[float, ...] = api.Field(
        (0.25, 0.25, 0.25, 0.25), description="probability of each strength (--probs)")
    guidance_scale: float = api.Field(7.5, description="classifier-free guidance scale", ge=0)
    # [?] the code leaves the steps at the img2img pipeline's default of its diffusers release (50).
    num_inference_steps: int = api.Field(50, description="steps of the full schedule (img2img runs strength x steps)",
                                         ge=1)
    prompt: str = api.Field("a photo of a {token}", description="prompt template; {token} is the class's token")
    batch_size: int = api.run_field(8, "images per generation batch (never changes which images are made)", ge=1)

    @model_validator(mode="after")
    def _strengths_fit(self):
        if len(self.strengths) != len(self.strength_probs) or not self.strengths:
            raise ValueError(f"{len(self.strengths)} strengths for {len(self.strength_probs)} probabilities")
        if any(not 0.0 <= s <= 1.0 for s in self.strengths):
            raise ValueError(f"strengths must be within [0, 1], got {self.strengths}")
        if any(p < 0 for p in self.strength_probs) or abs(sum(self.strength_probs) - 1.0) > 1e-6:
            raise ValueError(f"strength_probs must be non-negative and sum to 1, got {self.strength_probs}")
        if "{token}" not in self.prompt:
            raise ValueError(f"prompt {self.prompt!r} must contain {{token}}")
        return self
