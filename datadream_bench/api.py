"""The public API for plugin authors. Built-in plugins import from here only, as a third party would.

    from datadream_bench import api

    class MyMethod(api.Method):
        name = "my-method"
        class Config(api.MethodConfig):
            images_per_class: int = api.Field(500, description="images generated per class")
        def sample(self, sampler, batch):
            return sampler.text_to_image(batch, num_inference_steps=50, guidance_scale=2.0)

    @api.hookimpl
    def register_methods(register):
        register(MyMethod())
"""

from pydantic import Field

from .classifier.base import Classifier, ClassifierConfig, TrainJob
from .context import CellContext
from .datasets.adapter import DatasetAdapter, DatasetOptions
from .datasets.fewshot import FewShot
from .datasets.images import load_rgb
from .datasets.manifest import DatasetManifest, Sample
from .engine.lora import LoraWeights, lora_from_peft, remove_lora_layers, sd_lora_targets
from .engine.sampler import Sampler
from .errors import UsageError
from .fingerprint import seed_from
from .hookspecs import hookimpl
from .method import (
    NONE,
    REAL,
    SYNTHETIC,
    SYNTHETIC_REAL,
    Adaptation,
    ImageRequest,
    Method,
    MethodConfig,
    adapt_field,
    run_field,
)

__all__ = [
    "Adaptation", "CellContext", "Classifier", "ClassifierConfig", "DatasetAdapter", "DatasetManifest",
    "DatasetOptions", "FewShot", "Field", "ImageRequest", "LoraWeights", "Method", "MethodConfig", "NONE", "REAL",
    "SYNTHETIC", "SYNTHETIC_REAL", "Sample", "Sampler", "TrainJob", "UsageError", "adapt_field", "hookimpl",
    "load_rgb", "lora_from_peft", "remove_lora_layers", "run_field", "sd_lora_targets", "seed_from",
]
