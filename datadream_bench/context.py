"""What a method sees of its cell: the dataset, the few-shot draw, its config, the models, and request building."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .datasets.fewshot import FewShot
from .datasets.manifest import DatasetManifest
from .fingerprint import seed_from
from .errors import UsageError
from .method import ImageRequest, class_unit
from .models import loading
from .spec import CellSpec


@dataclass
class CellContext:
    spec: CellSpec
    config: Any  # the method's validated Config
    dataset: DatasetManifest
    fewshot: FewShot
    device: str
    dtype: torch.dtype
    progress: Callable[[str, int, int], None] = lambda what, done, total: None
    adaptations: dict = field(default_factory=dict)  # unit -> Adaptation.data, once the adapt stage has run

    def sd_pipeline(self):
        """The base text-to-image pipeline (loaded once per process; never modify it in place outside the engine)."""
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

    def prompt(self, label: int) -> str:
        return self.dataset.prompt(label)

    def request(self, label: int, index: int, *, prompt: str | None = None, adapter: str | None = None,
                init_image: str | None = None) -> ImageRequest:
        return ImageRequest(
            label=label,
            index=index,
            seed=self.image_seed(label, index),
            prompt=self.prompt(label) if prompt is None else prompt,
            adapter=adapter,
            init_image=init_image,
        )
