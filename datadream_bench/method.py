"""What a generation method is: how it adapts (maybe not at all) and how it turns a batch of requests into images.

The engine owns the rest: batching, per-image seeds, LoRA merge, learned tokens, precision, files, manifests,
resume, timing. The types a method exchanges with the host live in `contract` (re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .contract import (  # re-exported: the method contract in one place
    NONE,
    REAL,
    SETTINGS,
    SYNTHETIC,
    SYNTHETIC_REAL,
    Adaptation,
    ImageRequest,
    MethodConfig,
    MethodCost,
    adapt_field,
    class_unit,
    run_field,
    shot_unit,
    stage_fields,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from .context import CellContext
    from .engine.sampler import Sampler

__all__ = ["NONE", "REAL", "SETTINGS", "SYNTHETIC", "SYNTHETIC_REAL", "Adaptation", "ImageRequest", "Method",
           "MethodConfig", "MethodCost", "adapt_field", "class_unit", "run_field", "shot_unit", "stage_fields"]

# Settings of the default plan() and cost(): a config that relies on them must have these fields.
DEFAULT_PLAN_FIELDS = ("images_per_class",)


class Method:
    """Base class of a generation method plugin. Subclass, set name/Config, override what differs.

    A method that generates implements sample(); one that adapts implements adapt_units() and adapt(). Everything
    else has a default. The host checks the contract when the plugin loads (see plugins.check_method).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    settings: ClassVar[tuple[str, ...]] = (SYNTHETIC, SYNTHETIC_REAL)
    # Config values that replace the paper defaults under a profile, e.g. {"demo": {"images_per_class": 40}}.
    profile_defaults: ClassVar[dict[str, dict]] = {}
    # What the run record should say this method is built on, when it differs from the original (e.g. GLIDE -> SD).
    notes: ClassVar[str] = ""
    # False for a method whose images never depend on the real shots (zero-shot SD): its generated set is keyed
    # without them, so one set serves every shot count of a seed. Its context then refuses any read of ctx.fewshot.
    reads_shots: ClassVar[bool] = True

    @property
    def generates(self) -> bool:
        return SYNTHETIC in self.settings or SYNTHETIC_REAL in self.settings

    def adapt_units(self, ctx: CellContext) -> list[str]:
        """Names of independent adapt units (ctx.class_units(): one per class; ctx.shot_units(): one per real image).
        Each is adapted once, saved, and never redone by a rerun. Empty: nothing to adapt."""
        return []

    def adapt(self, ctx: CellContext, unit: str) -> Adaptation:
        raise TypeError(f"{self.name} declares adapt units but does not implement adapt()")

    def plan(self, ctx: CellContext) -> list[ImageRequest]:
        """The images to make. Default: config.images_per_class images of each class's prompt, no adapter."""
        n = ctx.config.images_per_class
        return [ctx.request(label, i) for label in range(len(ctx.dataset.classes)) for i in range(n)]

    def sample(self, ctx: CellContext, sampler: Sampler, batch: list[ImageRequest]) -> list[Image]:
        """One image per request of the batch, through the sampler (the adapters the batch names already applied)."""
        raise TypeError(f"{self.name} generates images but does not implement sample()")

    def required_models(self, config: MethodConfig, clip_model: str) -> list[tuple[str, str, str]]:
        """(setting name, kind, source) of each model the method loads itself (a captioner, a filter CLIP).

        The runner resolves them before any work, so a missing one is a usage error that names the setting.
        """
        return []

    def image_filter(self, ctx: CellContext):
        """An engine.filter.ImageFilter that judges each candidate image (the engine retries rejected ones), or None."""
        return None

    def cost(self, config: MethodConfig, classes: int, shots: int) -> MethodCost:
        """What one cell costs, for `dd-bench plan`: images and how each is made, and the adapt stage's fine-tuning.

        Default: the default plan's images_per_class images per class, text-to-image with the config's
        num_inference_steps and guidance_scale when it has them, and no adaptation. Override when the method
        differs (img2img, fine-tuning, images per real shot).
        """
        if not self.generates:
            return MethodCost()
        cost = MethodCost(images=classes * getattr(config, "images_per_class", 0))
        for field_name, attr in (("num_inference_steps", "steps"), ("guidance_scale", "guidance_scale")):
            if field_name in type(config).model_fields:
                setattr(cost, attr, getattr(config, field_name))
            else:
                cost.notes.append(f"{self.name}: no {field_name} in its config; counted as {getattr(cost, attr)}")
        if type(self).adapt_units is not Method.adapt_units:
            cost.notes.append(f"{self.name}: its adapt stage declares no cost (Method.cost); not counted")
        return cost

    def classifier_prompts(self, dataset, config: MethodConfig) -> list[str] | None:
        """The class prompts of the classifier's head, by label; None: the dataset's own (DataDream's prompt)."""
        return None
