"""The leaderboard's reference rows: zero-shot CLIP (no training) and CLIP-LoRA on the real few-shot images only.

They generate nothing; the classifier does all the work, told by the setting ("none" / "real") what to train on.
"""

from __future__ import annotations

from .. import api


class ZeroShotClip(api.Method):
    name = "zero-shot-clip"
    description = "reference: the CLIP backbone with the class prompts as its head, no training"
    settings = (api.NONE,)


class RealOnly(api.Method):
    name = "real-only"
    description = "reference: the classifier trained on the real few-shot images only"
    settings = (api.REAL,)


@api.hookimpl
def register_methods(register):
    register(ZeroShotClip())
    register(RealOnly())
