"""The public API for plugin authors. Built-in plugins import from here only, as a third party would.

    from datadream_bench import api

    class MyMethod(api.Method):
        name = "my-method"
        class Config(api.MethodConfig):
            images_per_class: int = api.Field(500, description="images generated per class")
        def sample(self, ctx, sampler, batch):
            return sampler.text_to_image(batch, num_inference_steps=50, guidance_scale=2.0)

    @api.hookimpl
    def register_methods(register):
        register(MyMethod())

What a plugin gets, by kind:
- methods: Method, MethodConfig (Field, adapt_field, run_field), CellContext (passed to every hook), ImageRequest,
  Adaptation (LoRA weights, learned tokens, tensors, data), units (class_unit, shot_unit) and adapter mixes
  (lora_mix), the Sampler (text-to-image, image-to-image at per-image strengths, prompt embeddings, initial
  latents), fine-tuning on the shared pipeline (Finetuner with Schedule / Views / LoraSpec / Example, or your own
  training inside restored(...)), learned-token helpers, filters, captioners, and MethodCost for `dd-bench plan`;
- classifiers: Classifier, ClassifierConfig, TrainJob, ClassifierCost, and CLIP (load_clip, clip_pixels,
  decode_images, normalize_pixels);
- any plugin that loads a model of its own: open_model (offline, checked before loading) and quiet_load;
- datasets: DatasetAdapter, DatasetOptions, DatasetManifest, Sample, DatasetInvalid.
"""

from pydantic import Field

from .captioner import Captioner, get_captioner, run_captioner
from .classifier.base import Classifier, ClassifierConfig, TrainJob
from .clip import clip_pixels, decode_images, load_clip, normalize_pixels, open_model, quiet_load
from .context import CellContext
from .contract import (
    NONE,
    REAL,
    SYNTHETIC,
    SYNTHETIC_REAL,
    Adaptation,
    ClassifierCost,
    ImageRequest,
    LoraWeights,
    MethodConfig,
    MethodCost,
    adapt_field,
    adapter_units,
    class_unit,
    lora_mix,
    run_field,
    shot_unit,
)
from .datasets.adapter import DatasetAdapter, DatasetOptions
from .datasets.check import prepare_dataset
from .datasets.fewshot import FewShot, import_few_shot
from .datasets.images import load_rgb
from .datasets.manifest import DatasetManifest, Sample
from .datasets.problems import DatasetInvalid
from .engine.filter import ClipFilter, ImageFilter, clip_filter
from .engine.finetune import Example, Finetuner, LoraSpec, Schedule, Views, losses_summary
from .engine.img2img import fit_square, load_init_image, pad_to_square
from .engine.lora import lora_from_peft, sd_lora_targets
from .engine.prompts import check_prompts_fit
from .engine.sampler import Sampler
from .engine.tokens import initial_embedding, learned_tokens
from .engine.training import restored
from .errors import UsageError
from .fingerprint import seed_from
from .hookspecs import hookimpl
from .method import Method

__all__ = [
    "Adaptation", "Captioner", "CellContext", "Classifier", "ClassifierConfig", "ClassifierCost", "ClipFilter",
    "DatasetAdapter", "DatasetInvalid", "DatasetManifest", "DatasetOptions", "Example", "FewShot", "Field",
    "Finetuner", "ImageFilter", "ImageRequest", "LoraSpec", "LoraWeights", "Method", "MethodConfig", "MethodCost",
    "NONE", "REAL", "SYNTHETIC", "SYNTHETIC_REAL", "Sample", "Sampler", "Schedule", "TrainJob", "UsageError", "Views",
    "adapt_field", "adapter_units", "check_prompts_fit", "class_unit", "clip_filter", "clip_pixels",
    "decode_images", "fit_square", "get_captioner", "hookimpl", "import_few_shot", "initial_embedding",
    "learned_tokens", "load_clip", "load_init_image", "load_rgb", "lora_from_peft", "lora_mix", "losses_summary",
    "normalize_pixels", "open_model", "quiet_load", "pad_to_square", "prepare_dataset", "restored", "run_captioner", "run_field",
    "sd_lora_targets", "seed_from", "shot_unit",
]
