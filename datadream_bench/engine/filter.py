"""Filters that keep or reject each generated candidate; the engine retries a rejected image slot.

A method that filters returns an ImageFilter from `image_filter(ctx)`. The engine asks it about every candidate,
walks each slot's candidates in a fixed order (the seed of candidate `attempt` comes from the slot's id and the
attempt number only) and, once `max_attempts` candidates of a slot were all rejected, keeps the last one and
records that it was forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from ..context import CellContext
    from ..method import ImageRequest


class ImageFilter(Protocol):
    max_attempts: int  # candidates per image slot, the last one kept whatever the verdict

    def accept(self, requests: list[ImageRequest], images: list[Image]) -> list[bool]: ...

    def describe(self) -> dict: ...


# "argmax": CLIP's top class is the image's own (DISEF). "above-chance": CLIP gives the image's own class a
# probability above 1/C (IsSynth).
RULES = ("argmax", "above-chance")


@dataclass
class ClipFilter:
    model: torch.nn.Module  # a transformers CLIPModel
    texts: list[str]  # one per class, in label order
    image_size: int
    rule: str = "argmax"
    max_attempts: int = 100
    device: str = "cpu"
    source: str = ""
    _text_features: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.rule not in RULES:
            raise UsageError(f"unknown filter rule {self.rule!r}; expected one of {', '.join(RULES)}")
        if self.max_attempts < 1:
            raise UsageError(f"a filter needs at least 1 attempt per image, got max_attempts={self.max_attempts}")

    def describe(self) -> dict:
        return {"kind": "clip", "source": self.source, "rule": self.rule, "max_attempts": self.max_attempts}

    def text_features(self, tokenizer) -> None:
        from ..classifier.model import text_features, text_inputs

        context = self.model.config.text_config.max_position_embeddings
        with torch.no_grad():
            self._text_features = text_features(self.model, text_inputs(tokenizer, self.texts, context, self.device))

    def pixels(self, images: list[Image]) -> torch.Tensor:
        """The classifier's test view: shorter side resized (bicubic), central square, CLIP normalisation."""
        from ..classifier.augment import test_transform
        from .img2img import fit_square

        arrays = [np.asarray(fit_square(img, self.image_size, "crop"), dtype=np.uint8) for img in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(self.device)
        return test_transform(x)

    @torch.no_grad()
    def probabilities(self, images: list[Image]) -> torch.Tensor:
        from ..classifier.model import logits

        if self._text_features is None:
            raise RuntimeError("ClipFilter.text_features(tokenizer) must run before the filter is used")
        self.model.eval()
        return F.softmax(logits(self.model, self.pixels(images), self._text_features).float(), dim=-1).cpu()

    def accept(self, requests: list[ImageRequest], images: list[Image]) -> list[bool]:
        probs = self.probabilities(images)
        labels = torch.tensor([r.label for r in requests])
        if self.rule == "argmax":
            keep = probs.argmax(-1) == labels
        else:
            keep = probs[torch.arange(len(labels)), labels] > 1.0 / probs.shape[1]
        return keep.tolist()


def clip_filter(ctx: CellContext, source: str = "", *, rule: str = "argmax", max_attempts: int = 100) -> ClipFilter:
    """A CLIP filter over the cell's class prompts. source "" is the cell's own CLIP (the classifier's backbone)."""
    from ..models.loading import load_clip

    source = source or ctx.spec.clip_model
    model, tokenizer, size = load_clip(source, ctx.device)
    texts = [ctx.prompt(label) for label in range(len(ctx.dataset.classes))]
    f = ClipFilter(model.eval(), texts, size, rule=rule, max_attempts=max_attempts, device=ctx.device, source=source)
    f.text_features(tokenizer)
    return f
