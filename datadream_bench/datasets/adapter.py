"""What a dataset plugin is: it turns a user's copy of a dataset into a DatasetManifest, validated once, here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .manifest import DatasetManifest


@dataclass(frozen=True)
class DatasetOptions:
    data_root: Path | None  # where the user keeps datasets (--data-root)
    work_dir: Path  # for datasets that are materialised on first use (the demo)
    extra: dict = field(default_factory=dict)  # per-dataset overrides (e.g. {"source": "coop", "path": ...})


class DatasetAdapter:
    key: ClassVar[str]
    description: ClassVar[str] = ""
    num_classes: ClassVar[int | None] = None
    prompt_word: ClassVar[str] = ""
    template: ClassVar[str] = "a photo of a {}."
    needs_data_root: ClassVar[bool] = True

    def load(self, options: DatasetOptions) -> DatasetManifest:
        raise TypeError(f"{self.key} does not implement load()")
