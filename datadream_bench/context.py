"""What a method sees of its cell: the dataset, the few-shot draw, its config, what adapt made, the models, and
request building. Passed to every hook of a method: adapt_units, adapt, plan, sample, image_filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .contract import Adaptation, Adapter, ImageRequest, class_unit, shot_unit
from .datasets.fewshot import FewShot
from .datasets.manifest import DatasetManifest
from .errors import UsageError
from .fingerprint import seed_from
from .models import loading
from .spec import CellSpec


class NoShots:
    """Stands for the few-shot draw in the context of a method that declares reads_shots = False: its generated set
    is shared by every shot count, so reading the shots would make that sharing wrong."""

    def __init__(self, method: str):
        self._method = method

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        from .validation import ContractError

        raise ContractError(f"method {self._method!r} declares reads_shots = False (one generated set for every "
                            f"shot count), but reads ctx.fewshot.{name}; remove the declaration if it uses the shots")


def shots_for(method, fewshot: FewShot):
    """What a method's context holds as its few-shot draw: the draw, or NoShots when the method does not read it."""
    return fewshot if getattr(method, "reads_shots", True) else NoShots(method.name)


@dataclass
class CellContext:
    spec: CellSpec
    config: Any  # the method's validated Config
    dataset: DatasetManifest
    fewshot: FewShot  # (NoShots for a method with reads_shots = False)
    device: str
    dtype: torch.dtype
    progress: Callable[[str, int, int], None] = lambda what, done, total: None
    # unit -> what the adapt stage made of it, once that stage has run (data, learned tokens and other tensors; LoRA
    # weights stay on disk for the engine, which merges them for the requests that name the unit)
    adaptations: dict[str, Adaptation] = field(default_factory=dict)

    def sd_pipeline(self):
        """The shared text-to-image pipeline, loaded once per process. Train on it only within api.restored(...)
        (or api.Finetuner, which does so); the engine applies adapters to it while sampling."""
        return loading.load_sd(self.spec.sd_model, self.device, self.dtype,
                               compile_unet=self.spec.runtime.get("compile", False))

    def image_seed(self, label: int, index: int, attempt: int = 0) -> int:
        """The seed of image (label, index): its id and the cell's seed, nothing else."""
        return seed_from("image", self.spec.seed, self.dataset.classes[label], index, attempt)

    def class_units(self) -> list[str]:
        """One adapt unit per class, in label order."""
        return [class_unit(label) for label in range(len(self.dataset.classes))]

    def class_of_unit(self, unit: str) -> int:
        """The label of a class unit; a unit this dataset does not have is an error naming the valid range."""
        units = self.class_units()
        if unit not in units:
            raise UsageError(f"{self.spec.method}: no adapt unit {unit!r}; its units are {units[0]} .. {units[-1]}")
        return units.index(unit)

    def shot_units(self) -> list[str]:
        """One adapt unit per real image of the few-shot draw (class by class, in the draw's order)."""
        return [shot_unit(label, j) for label, shots in enumerate(self.fewshot.shots) for j in range(len(shots))]

    def shot_of_unit(self, unit: str) -> tuple[int, int]:
        """(label, place in the class's shots) of a shot unit; an unknown unit is an error naming the valid ones."""
        places = {shot_unit(label, j): (label, j) for label, shots in enumerate(self.fewshot.shots)
                  for j in range(len(shots))}
        if unit not in places:
            units = list(places)
            raise UsageError(f"{self.spec.method}: no adapt unit {unit!r}; its units are {units[0]} .. {units[-1]}")
        return places[unit]

    def prompt(self, label: int) -> str:
        return self.dataset.prompt(label)

    def request(self, label: int, index: int, *, prompt: str | None = None, adapter: Adapter | None = None,
                init_image: str | None = None, strength: float | None = None) -> ImageRequest:
        """Image `index` of class `label`, seeded from its id. adapter: a unit, or api.lora_mix(...) of units."""
        return ImageRequest(
            label=label,
            index=index,
            seed=self.image_seed(label, index),
            prompt=self.prompt(label) if prompt is None else prompt,
            adapter=adapter,
            init_image=init_image,
            strength=strength,
        )
