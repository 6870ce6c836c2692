"""How long the classifier trains and which rows each step sees: the same budget whatever a method made.

budget "steps" (the default): every method takes the same number of optimizer steps in a setting, the reference's
budget at `budget_images_per_class` (B) images per class: `epochs` x ceil(rows per class x classes / batch_size),
where the rows per class are what the reference trains on at B images per class: B synthetic (synthetic), B
synthetic plus the shots repeated B // shots times (synthetic+real), the shots repeated B // shots times
(real-only). On EuroSAT (10 classes, 16 shots, batch 256, 60 epochs): 1,200 steps synthetic and real-only, 2,340
synthetic+real, whether the method made 64 images per class or 800. Every step is a full batch cut from a stream of
shuffled passes over the run's own training rows, so a small set is seen more often and a large one less. Warm-up
and validation are counted in those reference epochs.

budget "epochs": `epochs` passes over the training rows, each cut into batches with a last partial one, so steps
scale with a method's image count. This is what the reference code does, where every method made 500 per class.

In both, the real shots are repeated as the reference repeats them (images per class // shots, at least once): to
the method's synthetic count per class in synthetic+real, to budget_images_per_class for real-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from ..fingerprint import seed_from
from .data import batch_indices, epoch_order

BUDGETS = ("steps", "epochs")


@dataclass(frozen=True)
class Schedule:
    budget: str
    steps: int  # optimizer steps
    batch_size: int
    rows: int  # training rows (a real shot repeated n times is n rows)
    unit: int  # steps of one epoch: a pass over the rows (budget "epochs") or a reference epoch (budget "steps")
    warmup: int  # linear warm-up steps
    evals: tuple[int, ...]  # after which steps val is evaluated (every eval_every epochs, and after the last step)

    @property
    def epochs(self) -> float:
        """Passes over the training rows (fractional under a step budget)."""
        return self.steps * self.batch_size / self.rows if self.budget == "steps" else self.steps / self.unit

    @property
    def rows_seen(self) -> int:
        """Training rows the steps go through (images through the vision tower)."""
        return self.steps * self.batch_size if self.budget == "steps" else self.steps // self.unit * self.rows

    def describe(self) -> dict:
        return {"budget": self.budget, "planned_steps": self.steps, "batch_size": self.batch_size, "rows": self.rows,
                "steps_per_epoch": self.unit, "warmup_steps": self.warmup, "epochs": round(self.epochs, 3),
                "eval_steps": list(self.evals)}


def real_repeats(setting: str, shots: int, synthetic_per_class: int, budget_images_per_class: int) -> int:
    """How many times each real shot of a class is repeated: images per class // shots, at least once, where the
    images per class are the class's synthetic count (synthetic+real) or the budget's count (real-only)."""
    if shots < 1:
        return 0
    target = synthetic_per_class if setting == "synthetic+real" else budget_images_per_class
    return max(1, target // shots)


def budget_rows_per_class(setting: str, shots: int, budget_images_per_class: int) -> int:
    """Training rows per class of the reference's run at budget_images_per_class images per class."""
    real = real_repeats("real", shots, 0, budget_images_per_class) * shots
    return {"synthetic": budget_images_per_class, "synthetic+real": budget_images_per_class + real,
            "real": real}[setting]


def schedule(cfg, rows: int, num_classes: int, setting: str, shots: int) -> Schedule:
    """The steps, warm-up and validation points of a run of `setting` over `rows` training rows of `num_classes`
    classes with `shots` real shots per class.

    cfg needs budget, epochs, steps, budget_images_per_class, batch_size, warmup_epochs and eval_every."""
    if cfg.budget not in BUDGETS:
        raise ValueError(f"unknown classifier budget {cfg.budget!r}; expected one of {', '.join(BUDGETS)}")
    if rows < 1:
        raise ValueError("a training schedule needs at least one row")
    if cfg.budget == "steps":
        per_class = budget_rows_per_class(setting, shots, cfg.budget_images_per_class)
        unit = math.ceil(per_class * num_classes / cfg.batch_size)
        steps = cfg.steps or cfg.epochs * unit
    else:
        unit = math.ceil(rows / cfg.batch_size)
        steps = cfg.epochs * unit
    every = cfg.eval_every * unit
    evals = tuple(s for s in range(every, steps, every)) + (steps,)
    warmup = min(steps, round(cfg.warmup_epochs * unit))
    return Schedule(cfg.budget, steps, cfg.batch_size, rows, unit, warmup, evals)


def batches(s: Schedule, seed: int) -> Iterator[torch.Tensor]:
    """The rows of each step in order: under a step budget, full batches cut from consecutive shuffled passes (a
    batch may straddle two passes); under an epoch budget, each pass cut into batches, the last one partial."""
    if s.budget == "epochs":
        for epoch in range(s.steps // s.unit):
            yield from batch_indices(epoch_order(s.rows, seed_from("order", seed, epoch)), s.batch_size)
        return
    pending, passes = torch.empty(0, dtype=torch.long), 0
    for _ in range(s.steps):
        while len(pending) < s.batch_size:
            pending = torch.cat([pending, epoch_order(s.rows, seed_from("order", seed, passes))])
            passes += 1
        yield pending[:s.batch_size]
        pending = pending[s.batch_size:]
