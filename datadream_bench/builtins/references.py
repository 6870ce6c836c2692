"""The leaderboard's reference rows: zero-shot CLIP (no training) and CLIP-LoRA on the real few-shot images only.

They generate nothing; the classifier does all the work, told by the setting ("none" / "real") what to train on.
Zero-shot CLIP is the standard number by default: CoOp's per-dataset template with the canonical (CoOp) names, as
the few-shot CLIP literature reports it; `prompt=datadream` gives it DataDream's prompt instead, the head every
trained row starts from.
"""

from __future__ import annotations

from typing import Literal

from .. import api


class ZeroShotClipConfig(api.MethodConfig):
    prompt: Literal["coop", "datadream"] = api.Field(
        "coop", description="class prompts of the zero-shot head: coop = the dataset's CoOp template with the "
                            "canonical names (the standard zero-shot number); datadream = DataDream's prompt "
                            "'a {word}photo of a {name}' with the dataset's prompt names")


class ZeroShotClip(api.Method):
    name = "zero-shot-clip"
    description = "reference: the CLIP backbone with the class prompts as its head (CoOp template), no training"
    settings = (api.NONE,)
    Config = ZeroShotClipConfig

    def classifier_prompts(self, dataset, config: ZeroShotClipConfig) -> list[str] | None:
        if config.prompt == "datadream":
            return None
        return [dataset.zero_shot_prompt(label) for label in range(len(dataset.classes))]


class RealOnly(api.Method):
    name = "real-only"
    description = "reference: the classifier trained on the real few-shot images only"
    settings = (api.REAL,)


@api.hookimpl
def register_methods(register):
    register(ZeroShotClip())
    register(RealOnly())
