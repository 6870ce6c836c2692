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

from .captioner import Captioner, get_captioner, run_captioner
from .classifier.base import Classifier, ClassifierConfig, TrainJob
from .context import CellContext
from .datasets.adapter import DatasetAdapter, DatasetOptions
from .datasets.check import prepare_dataset
from .datasets.fewshot import FewShot, import_few_shot
from .datasets.images import load_rgb
from .datasets.manifest import DatasetManifest, Sample
from .datasets.problems import DatasetInvalid
from .engine.filter import ClipFilter, ImageFilter, clip_filter
from .engine.img2img import fit_square, load_init_image, pad_to_square
from .engine.lora import LoraWeights, lora_from_peft, remove_lora_layers, sd_lora_targets
from .engine.prompts import check_prompts_fit
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
    class_unit,
    run_field,
)

__all__ = [
    "Adaptation", "Captioner", "CellContext", "Classifier", "ClassifierConfig", "ClipFilter", "DatasetAdapter",
    "DatasetInvalid", "DatasetManifest", "DatasetOptions", "FewShot", "Field", "ImageFilter", "ImageRequest",
    "LoraWeights", "Method", "MethodConfig", "NONE", "REAL", "SYNTHETIC", "SYNTHETIC_REAL", "Sample", "Sampler",
    "TrainJob", "UsageError", "adapt_field", "check_prompts_fit", "class_unit", "clip_filter", "fit_square", "get_captioner", "hookimpl",
    "import_few_shot", "load_init_image", "load_rgb", "lora_from_peft", "pad_to_square", "prepare_dataset",
    "remove_lora_layers", "run_captioner", "run_field", "sd_lora_targets", "seed_from",
]
