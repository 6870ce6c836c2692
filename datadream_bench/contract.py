"""The plugin contract, at the bottom of the house: what a method plugin and the host hand each other.

Requests (the images to make), adaptations (what the adapt stage made: LoRA weights, learned tokens, other tensors,
JSON data), LoRA weights, method configs, settings and the cost a method declares for `dd-bench plan`. Nothing here
imports the engine, the runner or the context, so the engine, the context and plugins can all import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import torch
from pydantic import BaseModel, ConfigDict, Field

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
    return Field(default, description=description, json_schema_extra={"stage": "adapt"}, **kw)


def run_field(default: Any, description: str, **kw) -> Any:
    """A config field that changes how fast images are made, never which (batch size): keys no artifact."""
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
    """The adapt unit of one class (class-wise LoRA, per-class captions or tokens). Named from the label, never from
    the class name, which may hold "/"."""
    return f"class-{label:04d}"


def shot_unit(label: int, shot: int) -> str:
    """The adapt unit of one real image: shot `shot` (its place in the few-shot draw) of class `label`."""
    return f"class-{label:04d}-shot-{shot:04d}"


# What a request asks the engine to apply before sampling: the key of one adapt unit, or a weighted mix of units
# ((unit, weight), ...) whose LoRAs are merged as sum(weight * LoRA).
Adapter = Union[str, tuple[tuple[str, float], ...]]


def lora_mix(*pairs: tuple[str, float]) -> tuple[tuple[str, float], ...]:
    """A weighted combination of adapt units for ImageRequest.adapter, e.g. lora_mix(("a", 0.5), ("b", 0.5)).

    Weights are plain floats (recorded with each image); a unit may appear once.
    """
    units = [u for u, _ in pairs]
    if not pairs or len(set(units)) != len(units):
        raise ValueError(f"a LoRA mix needs at least one unit, each once; got {units}")
    return tuple((str(u), float(w)) for u, w in pairs)


def adapter_units(adapter: Adapter | None) -> tuple[tuple[str, float], ...]:
    """The (unit, weight) pairs of a request's adapter: a single unit has weight 1."""
    if adapter is None:
        return ()
    if isinstance(adapter, str):
        return ((adapter, 1.0),)
    return tuple((str(u), float(w)) for u, w in adapter)


@dataclass(frozen=True)
class ImageRequest:
    """One image to make. Its id is (label, index); its seed is derived from the id (and the cell's seed) only.

    adapter: the adapt unit (or weighted mix of units, see lora_mix) whose LoRA and learned tokens the engine applies
    before sampling this image. init_image: a real image for img2img. strength: this image's img2img noise level,
    when the method sets one per image (Sampler.image_to_image uses it when called without a strength).
    """

    label: int
    index: int
    seed: int
    prompt: str
    adapter: Adapter | None = None
    init_image: str | None = None
    strength: float | None = None

    @property
    def id(self) -> str:
        return f"{self.label:04d}-{self.index:05d}"

    def record(self) -> dict:
        """What the manifest keeps of the request (JSON): enough to say how each image was made."""
        adapter = self.adapter if self.adapter is None or isinstance(self.adapter, str) else \
            [[u, w] for u, w in adapter_units(self.adapter)]
        out = {"id": self.id, "label": self.label, "index": self.index, "seed": self.seed, "prompt": self.prompt,
               "adapter": adapter, "init_image": self.init_image}
        if self.strength is not None:
            out["strength"] = self.strength
        return out


@dataclass
class LoraWeights:
    """LoRA factors per component ("unet", "text_encoder") in PEFT's key layout, and the scale alpha / rank."""

    tensors: dict[str, torch.Tensor]  # "<component>.<module path>.lora_A.weight" -> (rank, in); lora_B -> (out, rank)
    rank: int
    alpha: float

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def factors(self) -> dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]:
        """(component, module path) -> (A, B)."""
        out = {}
        for key, a in self.tensors.items():
            if key.endswith(".lora_A.weight"):
                stem = key[: -len(".lora_A.weight")]
                component, module = stem.split(".", 1)
                out[(component, module)] = (a, self.tensors[stem + ".lora_B.weight"])
        return out


@dataclass
class Adaptation:
    """What one adapt unit produced. Every part is optional; the runner saves each (tensors as safetensors, data as
    JSON) and a rerun reads them back instead of adapting again.

    lora: LoRA weights the engine merges for requests that name the unit (stays on disk until a request needs it).
    tokens: learned token embeddings, placeholder -> (hidden,) vector; for requests that name the unit the engine adds
        them to the text encoder, so prompts may use the placeholder (e.g. "a photo of a <class-0>").
    tensors: any other tensors the method wants back in plan() or sample() (ctx.adaptations[unit].tensors).
    data: JSON (captions, training losses, which shots were used).
    """

    lora: LoraWeights | None = None
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    data: dict = field(default_factory=dict)


@dataclass
class MethodCost:
    """What one cell of a method costs, as `dd-bench plan` counts it (Method.cost).

    images: images generated (each counted once; a filter's rejected candidates cost more).
    steps, guidance_scale, strength: how each image is made (strength = the mean fraction of the schedule run,
        1.0 for text-to-image).
    adapt_steps: optimiser steps of the adapt stage's fine-tuning, over all units.
    adapt_images: images pushed through those steps (steps x batch).
    adapt_text_encoder: whether fine-tuning back-propagates through the text encoder (text LoRA, learned tokens).
    notes: what the estimate leaves out.
    """

    images: int = 0
    steps: int = 50
    guidance_scale: float = 2.0
    strength: float = 1.0
    adapt_steps: int = 0
    adapt_images: int = 0
    adapt_text_encoder: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class ClassifierCost:
    """What training a classifier costs, as `dd-bench plan` counts it (Classifier.cost): optimisation steps, the
    training images pushed through the image tower over all of them, and the evaluations on val during training."""

    steps: int = 0
    images_seen: int = 0
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)
