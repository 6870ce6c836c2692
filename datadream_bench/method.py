"""What a generation method is: how it adapts (maybe not at all) and how it turns a batch of requests into images.

The engine owns the rest: batching, per-image seeds, LoRA merge, precision, files, manifests, resume, timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .engine.lora import LoraWeights

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from .context import CellContext
    from .engine.sampler import Sampler

SYNTHETIC = "synthetic"
SYNTHETIC_REAL = "synthetic+real"
REAL = "real"
NONE = "none"
SETTINGS = (SYNTHETIC, SYNTHETIC_REAL, REAL, NONE)


class MethodConfig(BaseModel):
    """Base of every method's typed config.

    Fields made with adapt_field() key the adapt artifact, fields made with run_field() key nothing (batch size),
    all others key the generated set.
    """

    # allow_inf_nan: an infinite or NaN setting is refused up front, not found when training diverges.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def adapt_field(default: Any, description: str, **kw) -> Any:
    """A config field that changes what the adapt stage produces (so it is part of the adapt fingerprint)."""
    from pydantic import Field

    return Field(default, description=description, json_schema_extra={"stage": "adapt"}, **kw)


def run_field(default: Any, description: str, **kw) -> Any:
    """A config field that changes how fast images are made, never which (batch size): keys no artifact."""
    from pydantic import Field

    return Field(default, description=description, json_schema_extra={"stage": "run"}, **kw)


def stage_fields(config: BaseModel, stage: str) -> dict:
    """The fields of config that belong to stage "adapt", "generate" or "run" (undeclared fields: "generate")."""
    out = {}
    for name, info in type(config).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("stage", "generate") == stage:
            out[name] = getattr(config, name)
    return out


def class_unit(label: int) -> str:
    """The adapt unit of one class (class-wise LoRA, per-class captions). Named from the label, never from the class
    name, which may hold "/"."""
    return f"class-{label:04d}"


@dataclass(frozen=True)
class ImageRequest:
    """One image to make. Its id is (label, index); its seed is derived from the id (and the cell's seed) only."""

    label: int
    index: int
    seed: int
    prompt: str
    adapter: str | None = None  # key of a LoRA from the adapt stage, merged by the engine before sampling
    init_image: str | None = None  # path of a real image for img2img methods

    @property
    def id(self) -> str:
        return f"{self.label:04d}-{self.index:05d}"


@dataclass
class Adaptation:
    """What one unit of the adapt stage produced: LoRA weights and/or JSON data (captions, say)."""

    lora: LoraWeights | None = None
    data: dict = field(default_factory=dict)


class Method:
    """Base class of a generation method plugin. Subclass, set name/Config, override what differs."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    settings: ClassVar[tuple[str, ...]] = (SYNTHETIC, SYNTHETIC_REAL)
    # Config values that replace the paper defaults under a profile, e.g. {"demo": {"images_per_class": 40}}.
    profile_defaults: ClassVar[dict[str, dict]] = {}
    # What the run record should say this method is built on, when it differs from the original (e.g. GLIDE -> SD).
    notes: ClassVar[str] = ""

    @property
    def generates(self) -> bool:
        return SYNTHETIC in self.settings or SYNTHETIC_REAL in self.settings

    def adapt_units(self, ctx: CellContext) -> list[str]:
        """Names of independent adapt units (one per class for class-wise LoRA). Empty: nothing to adapt."""
        return []

    def adapt(self, ctx: CellContext, unit: str) -> Adaptation:
        raise TypeError(f"{self.name} declares adapt units but does not implement adapt()")

    def plan(self, ctx: CellContext) -> list[ImageRequest]:
        """The images to make. Default: config.images_per_class images of each class's prompt, no adapter."""
        n = getattr(ctx.config, "images_per_class")
        return [ctx.request(label, i) for label in range(len(ctx.dataset.classes)) for i in range(n)]

    def sample(self, sampler: Sampler, batch: list[ImageRequest]) -> list[Image]:
        raise TypeError(f"{self.name} generates images but does not implement sample()")

    def required_models(self, config: MethodConfig, clip_model: str) -> list[tuple[str, str, str]]:
        """(setting name, kind, source) of each model the method loads itself (a captioner, a filter CLIP).

        The runner resolves them before any work, so a missing one is a usage error that names the setting.
        """
        return []

    def image_filter(self, ctx: CellContext):
        """An engine.filter.ImageFilter that judges each candidate image (the engine retries rejected ones), or None."""
        return None

    def classifier_prompts(self, dataset, config: MethodConfig) -> list[str] | None:
        """The class prompts of the classifier's head, by label; None: the dataset's own (DataDream's prompt)."""
        return None
