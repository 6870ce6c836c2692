"""Filters that keep or reject each generated candidate; the engine retries a rejected image slot.

A method that filters returns an ImageFilter from `image_filter(ctx)`. The engine asks it about every candidate,
walks each slot's candidates in a fixed order (the seed of candidate `attempt` comes from the slot's id and the
attempt number only) and gives up on a slot by keeping its candidate whatever the filter says, recorded as forced:
- per image (the default): once `max_attempts` candidates of the slot were all rejected, the last one is kept;
- per class (a filter with a `class_budget`, as DISEF's original): once the class has spent `class_budget`
  candidates, every further candidate of that class is kept.
"""

from __future__ import annotations

from bisect import bisect_left, insort
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
    # class_budget (optional attribute): candidates a class may spend before every further one is kept (None: no
    # class timeout); class_size (optional): the class's images in the whole plan, when the engine may be handed a
    # class in pieces (each piece then gets its share of the budget)

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
    class_budget: int | None = None
    class_size: int | None = None
    _text_features: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.rule not in RULES:
            raise UsageError(f"unknown filter rule {self.rule!r}; expected one of {', '.join(RULES)}")
        if self.max_attempts < 1:
            raise UsageError(f"a filter needs at least 1 attempt per image, got max_attempts={self.max_attempts}")
        if self.class_budget is not None and self.class_budget < 1:
            raise UsageError(f"a class timeout needs a budget of at least 1 candidate, got {self.class_budget}")

    def describe(self) -> dict:
        timeout = ({"timeout": "image", "max_attempts": self.max_attempts} if self.class_budget is None
                   else {"timeout": "class", "class_budget": self.class_budget, "class_size": self.class_size})
        return {"kind": "clip", "source": self.source, "rule": self.rule, **timeout}

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


def clip_filter(ctx: CellContext, source: str = "", *, rule: str = "argmax", max_attempts: int = 100,
                class_budget: int | None = None, class_size: int | None = None) -> ClipFilter:
    """A CLIP filter over the cell's class prompts. source "" is the cell's own CLIP (the classifier's backbone).
    With class_budget, the give-up rule is per class (max_attempts is then unused); class_size is the number of
    images of each class in the method's plan."""
    from ..models.loading import load_clip

    source = source or ctx.spec.clip_model
    model, tokenizer, size = load_clip(source, ctx.device)
    texts = [ctx.prompt(label) for label in range(len(ctx.dataset.classes))]
    if class_budget is not None:
        # No slot can need more: its own candidates alone would have spent the class's budget.
        max_attempts = class_budget + 1
    f = ClipFilter(model.eval(), texts, size, rule=rule, max_attempts=max_attempts, device=ctx.device, source=source,
                   class_budget=class_budget, class_size=class_size)
    f.text_features(tokenizer)
    return f


class PerImageTimeout:
    """Give up on a slot at its max_attempts-th candidate."""

    def __init__(self, max_attempts: int):
        self.max_attempts = max_attempts

    def forced(self, request: ImageRequest, attempt: int) -> bool:
        return attempt + 1 >= self.max_attempts

    def rejected(self, request: ImageRequest, attempt: int) -> None:
        pass


class ClassTimeout:
    """Give up per class, as DISEF's original does: a candidate is kept whatever the filter says once its class has
    spent `budget` candidates before it (the original: more than 100 batch cycles of 8, so budget 800).

    "Before it" is counted in one canonical order per class: attempt 0 of every slot in plan order, then attempt 1
    of the slots rejected at attempt 0, and so on. A candidate's place in that order depends only on which slots
    were rejected in the earlier rounds and, in its own round, which earlier slots reached it: verdicts the engine
    always has when it judges the candidate (its queue is first in, first out; a resumed run rebuilds them from the
    rejection log, where an accepted image lost in flight never appears). So which candidates the timeout keeps
    does not depend on batching or interruptions.

    The runner hands the engine a plan in blocks of consecutive images (so that processes can share a set), and a
    block may hold part of a class: each part then spends its share of the budget, in proportion to its images of
    the class_size, counted among its own candidates. With DISEF's 64 images per class and blocks of 64, a block is
    exactly one class.
    """

    def __init__(self, budget: int, requests: list[ImageRequest], rejected_before: dict[str, dict],
                 class_size: int | None = None):
        present: dict[int, int] = {}
        for r in requests:
            present[r.label] = present.get(r.label, 0) + 1
        self.budgets = {label: budget if not class_size else max(1, round(budget * n / class_size))
                        for label, n in present.items()}
        self.where = {r.id: (r.label, i) for i, r in enumerate(requests)}
        # label -> round -> plan positions of the slots whose candidate of that round exists, sorted
        self.rounds: dict[int, list[list[int]]] = {}
        self._before: dict[tuple[int, int], int] = {}  # (label, round) -> candidates of the earlier rounds
        for r in requests:
            self.rounds.setdefault(r.label, [[]])[0].append(self.where[r.id][1])
        for image_id, attempts in rejected_before.items():
            if image_id in self.where:
                for attempt in attempts:
                    self._reach(image_id, attempt + 1)

    def _reach(self, image_id: str, round_: int) -> None:
        label, position = self.where[image_id]
        rounds = self.rounds[label]
        while len(rounds) <= round_:
            rounds.append([])
        insort(rounds[round_], position)

    def position(self, request: ImageRequest, attempt: int) -> int:
        """How many candidates of the class come before this one in the canonical order. The earlier rounds are
        complete when any candidate of this round is judged, so their count is computed once."""
        label, position = self.where[request.id]
        rounds = self.rounds[label]
        before = self._before.get((label, attempt))
        if before is None:
            before = sum(len(r) for r in rounds[:attempt])
            self._before[(label, attempt)] = before
        return before + bisect_left(rounds[attempt], position)

    def forced(self, request: ImageRequest, attempt: int) -> bool:
        return self.position(request, attempt) >= self.budgets[request.label]

    def rejected(self, request: ImageRequest, attempt: int) -> None:
        self._reach(request.id, attempt + 1)


def timeout_for(image_filter: ImageFilter, requests: list[ImageRequest], rejected_before: dict[str, dict]):
    """The filter's give-up rule: per class when it has a class_budget, else per image."""
    budget = getattr(image_filter, "class_budget", None)
    if budget is not None:
        return ClassTimeout(budget, requests, rejected_before, getattr(image_filter, "class_size", None))
    return PerImageTimeout(image_filter.max_attempts)
