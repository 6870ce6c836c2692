"""What a classifier plugin is: it trains on (synthetic and/or real) images, selects on val, evaluates on test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from ..contract import ClassifierCost  # noqa: F401 - part of the classifier contract

if TYPE_CHECKING:  # pragma: no cover
    from ..datasets.fewshot import FewShot
    from ..datasets.manifest import DatasetManifest, Sample


class ClassifierConfig(BaseModel):
    # allow_inf_nan: an infinite or NaN setting is refused up front, not found when training diverges.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass
class TrainJob:
    """Everything a classifier needs for one cell. synthetic is empty for the reference rows."""

    dataset: DatasetManifest
    fewshot: FewShot
    synthetic: list[Sample]
    setting: str  # synthetic | synthetic+real | real | none (zero-shot, no training)
    config: Any
    clip_model: str
    seed: int
    device: str
    progress: Callable[[str, int, int], None] = lambda what, done, total: None
    info: dict = field(default_factory=dict)  # the classifier records what it did (epochs run, best epoch, ...)
    cache_dir: Path | None = None  # where decoded images may be kept between settings and stages (None: in memory)
    prompts: list[str] | None = None  # the head's class prompts by label (None: the dataset's, DataDream's prompt)

    def class_prompts(self) -> list[str]:
        if self.prompts is not None:
            if len(self.prompts) != len(self.dataset.classes):
                raise ValueError(f"{len(self.prompts)} class prompts for {len(self.dataset.classes)} classes")
            return list(self.prompts)
        return [self.dataset.prompt(label) for label in range(len(self.dataset.classes))]


class Classifier:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[ClassifierConfig]] = ClassifierConfig
    profile_defaults: ClassVar[dict[str, dict]] = {}

    def train(self, job: TrainJob) -> dict:
        """Train and select on val; return the state to keep (tensors by name, saved as safetensors)."""
        raise TypeError(f"{self.name} does not implement train()")

    def evaluate(self, job: TrainJob, state: dict, split: str = "test") -> dict:
        """Metrics on a real split, at least {"top1": percent, "n": samples}."""
        raise TypeError(f"{self.name} does not implement evaluate()")

    def cost(self, config: Any, setting: str, classes: int, synthetic: int, shots: int) -> ClassifierCost | None:
        """For `dd-bench plan`: the steps, training images seen and val evaluations of one cell's training, given
        the setting, the class count, synthetic images per class and real shots per class. None: the classifier does
        not say (its training is not counted)."""
        return None
