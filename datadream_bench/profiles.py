"""Profiles: which backbones a run uses and where they come from. The code path is the same for all three."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

DEMO_WEIGHTS = Path(__file__).parent / "models" / "demo_weights"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    sd_model: str  # a local folder, a hub id looked up in the local cache, or "tiny:<seed>" (built in code)
    clip_model: str
    default_dataset: str | None
    default_shots: int


PROFILES = {
    "paper": Profile(
        "paper",
        "published settings; SD 2.1-base and CLIP ViT-B/16 from a local folder or the local HF cache; needs a GPU",
        sd_model="stabilityai/stable-diffusion-2-1-base",
        clip_model="openai/clip-vit-base-patch16",
        default_dataset=None,
        default_shots=16,
    ),
    "demo": Profile(
        "demo",
        "tiny SD and CLIP pretrained on digits 5-9 (shipped), benchmark on digits 0-4; minutes on a laptop CPU",
        sd_model=str(DEMO_WEIGHTS / "sd"),
        clip_model=str(DEMO_WEIGHTS / "clip"),
        default_dataset="demo-digits",
        default_shots=4,
    ),
    "tiny": Profile(
        "tiny",
        "tiny random SD and CLIP built in code: exercises every stage in seconds, accuracy at chance",
        sd_model="tiny:0",
        clip_model="tiny:0",
        default_dataset="demo-digits",
        default_shots=2,
    ),
}
ALIASES = {"smoke": "demo"}


def get_profile(name: str) -> Profile:
    name = ALIASES.get(name, name)
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return PROFILES[name]
