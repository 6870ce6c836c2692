"""DISEF-style settings. Defaults are the published ones; profiles replace some (see method.py)."""

from __future__ import annotations

from typing import Literal

from datadream_bench import api


class DisefConfig(api.MethodConfig):
    # Captions of the real shots: the adapt stage.
    captioner: str = api.adapt_field(
        "blip", "captioner plugin that writes one prompt per real shot (`dd-bench list captioners`); the original "
                "used LLaVA-1.5, 'template' is its fallback 'a photo of a {class}.'")
    captioner_model: str = api.adapt_field(
        "Salesforce/blip-image-captioning-large",
        "weights of a captioner that needs them: a local folder or a hub id in the local cache")

    # img2img from a real shot, prompted with a caption.
    images_per_class: int = api.Field(64, description="synthetic images generated per class", ge=1, le=1_000_000)
    num_inference_steps: int = api.Field(20, description="DPM-Solver++ steps of the full schedule", ge=1, le=1000)
    # 0.75 of 20 steps: sampling starts at step 5. [?] dataset dependent in the original.
    strength: float = api.Field(0.75, description="img2img noise level in [0, 1]", ge=0, le=1)
    guidance_scale: float = api.Field(8.0, description="classifier-free guidance scale", ge=0)
    scheduler: Literal["dpm-solver++"] = api.Field("dpm-solver++", description="sampler of the img2img schedule")
    init_fit: Literal["pad", "crop", "stretch"] = api.Field(
        "pad", description="how a real shot becomes a square init image: pad (then resize), crop, stretch")

    # The filter: CLIP must classify an image as its own class.
    clip_filter: bool = api.Field(True, description="keep an image only if CLIP classifies it as its own class")
    filter_model: str = api.Field(
        "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
        description="CLIP of the filter (transformers format): a local folder or hub id in the local cache; "
                    "empty: the cell's CLIP")
    filter_timeout: Literal["class", "image"] = api.Field(
        "class", description="when the filter gives up: class = as the original, once a class has spent "
                             "filter_class_budget candidates every further image of it is kept; image = after "
                             "filter_max_attempts candidates of one image, its last one is kept")
    # The original gives up on a class after more than 100 batch cycles of 8 candidates.
    filter_class_budget: int = api.Field(
        800, description="class timeout: candidates a class may spend before every further one is kept", ge=1,
        le=10_000_000)
    filter_max_attempts: int = api.Field(
        100, description="image timeout: candidates per image before the last one is kept anyway", ge=1, le=10_000)
    batch_size: int = api.run_field(8, "images per generation batch (never changes which images are made)", ge=1)
