"""IsSynth-style settings. Defaults are the published ones (real guidance, few-shot); profiles replace some."""

from __future__ import annotations

from typing import Literal, Optional

from datadream_bench import api

# Noise level by shot count: 15/20/35/40/50 of 100 steps for 16/8/4/2/1 shots (fewer shots: more noise, so the
# images stray further from the few real ones).
STRENGTH_BY_SHOTS = {16: 0.15, 8: 0.20, 4: 0.35, 2: 0.40, 1: 0.50}


def strength_for_shots(k: int) -> float:
    """The table's value; for another k, the value of the largest tabled count not above k (3 shots -> 2-shot 0.40,
    32 shots -> 16-shot 0.15): never less noise than the table gives a smaller draw."""
    if k < 1:
        raise api.UsageError(f"shots must be at least 1, got {k}")
    return STRENGTH_BY_SHOTS[max(n for n in STRENGTH_BY_SHOTS if n <= k)]


class IsSynthConfig(api.MethodConfig):
    images_per_class: int = api.Field(800, description="synthetic images generated per class", ge=1, le=1_000_000)
    strength: Optional[float] = api.Field(
        None, description="img2img noise level in [0, 1]; None: by shot count (16/8/4/2/1 -> .15/.20/.35/.40/.50)",
        ge=0, le=1)
    num_inference_steps: int = api.Field(50, description="sampling steps of the full schedule (img2img runs "
                                                         "strength x steps of them)", ge=1, le=1000)
    guidance_scale: float = api.Field(3.0, description="classifier-free guidance scale", ge=0)
    # [?] how the original brought real images to GLIDE's square input; the central square is the classifier's view.
    init_fit: Literal["crop", "pad", "stretch"] = api.Field(
        "crop", description="how a real shot becomes a square init image: crop (central square), pad, stretch")
    clip_filter: bool = api.Field(
        False, description="keep an image only if CLIP gives its class a probability above 1/C (IsSynth used this "
                           "filter in its zero-shot setting)")
    filter_model: str = api.Field(
        "", description="CLIP of the filter: a local folder or hub id in the local cache; empty: the cell's CLIP")
    filter_max_attempts: int = api.Field(
        100, description="candidates per image before the last one is kept anyway", ge=1, le=10_000)
    batch_size: int = api.run_field(10, "images per generation batch (never changes which images are made)", ge=1)
