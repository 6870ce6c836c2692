"""The shipped demo backbones: safetensors only, the architecture of models/tiny.py, a tokenizer that round-trips."""

import json
import math

import pytest
from safetensors import safe_open

from datadream_bench.datasets.demo import NAMES, class_name
from datadream_bench.models import tiny
from datadream_bench.profiles import DEMO_WEIGHTS, get_profile

SD = DEMO_WEIGHTS / "sd"
CLIP = DEMO_WEIGHTS / "clip"
PROMPTS = [f"a photo of a {class_name(d)}" for d in range(len(NAMES))] + [""]


def shapes(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)


def model_shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def public(config):
    # through JSON, as on disk: tuples become lists
    return {k: v for k, v in json.loads(json.dumps(dict(config))).items() if not k.startswith("_")}


def test_profile_points_at_the_shipped_folders():
    profile = get_profile("demo")
    assert profile.sd_model == str(SD) and profile.clip_model == str(CLIP)
    assert (SD / "model_index.json").is_file() and (CLIP / "config.json").is_file()


def test_weights_are_safetensors_only():
    files = [f for f in DEMO_WEIGHTS.rglob("*") if f.is_file()]
    weights = [f for f in files if f.suffix not in (".json", ".txt")]
    assert weights, f"no weight files under {DEMO_WEIGHTS}"
    assert all(f.suffix == ".safetensors" for f in weights), weights
    for f in weights:
        with open(f, "rb") as fh:  # safetensors: 8-byte little-endian header length, then a JSON header
            n = int.from_bytes(fh.read(8), "little")
            json.loads(fh.read(n))
    # a few MB: the package carries them
    assert sum(f.stat().st_size for f in files) < 20 * 2**20


def test_sd_architecture_matches_tiny():
    ref = tiny.tiny_sd_components(0)
    assert shapes(SD / "unet" / "diffusion_pytorch_model.safetensors") == model_shapes(ref["unet"])
    assert shapes(SD / "vae" / "diffusion_pytorch_model.safetensors") == model_shapes(ref["vae"])
    assert shapes(SD / "text_encoder" / "model.safetensors") == model_shapes(ref["text_encoder"])

    unet_cfg = json.loads((SD / "unet" / "config.json").read_text())
    assert public(unet_cfg) == public(ref["unet"].config)
    vae_cfg = public(json.loads((SD / "vae" / "config.json").read_text()))
    ref_vae = public(ref["vae"].config)
    # the one setting that is measured, not built: latents scaled to about unit std
    factor = vae_cfg.pop("scaling_factor")
    ref_vae.pop("scaling_factor")
    assert vae_cfg == ref_vae
    assert math.isfinite(factor) and 0.05 < factor < 20

    sched_cfg = json.loads((SD / "scheduler" / "scheduler_config.json").read_text())
    assert public(sched_cfg) == public(tiny.sd_scheduler().config)

    text_cfg = json.loads((SD / "text_encoder" / "config.json").read_text())
    for key, value in tiny.text_config_kwargs(len(ref["tokenizer"])).items():
        assert text_cfg[key] == value, key


def test_clip_architecture_matches_tiny():
    ref, _ = tiny.tiny_clip(0)
    assert shapes(CLIP / "model.safetensors") == model_shapes(ref)
    cfg = json.loads((CLIP / "config.json").read_text())
    assert cfg["projection_dim"] == ref.config.projection_dim
    for key in ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        assert cfg["vision_config"][key] == getattr(ref.config.vision_config, key), key
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "max_position_embeddings", "eos_token_id"):
        assert cfg["text_config"][key] == getattr(ref.config.text_config, key), key
    proc = json.loads((CLIP / "preprocessor_config.json").read_text())
    assert proc["crop_size"] == {"height": tiny.IMAGE_SIZE, "width": tiny.IMAGE_SIZE}


@pytest.mark.parametrize("folder", [SD / "tokenizer", CLIP])
def test_tokenizer_round_trips_prompts(folder):
    from transformers import CLIPTokenizer

    shipped = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    built = tiny.byte_tokenizer()
    assert len(shipped) == len(built) and shipped.model_max_length == tiny.TEXT_CONTEXT
    for text in PROMPTS + ["digit 7 écrit à la main"]:  # CLIP lower-cases and splits punctuation
        ids = shipped(text).input_ids
        assert ids == built(text).input_ids
        assert len(ids) <= shipped.model_max_length, text  # nothing cut: every prompt fits the context
        assert ids[0] == shipped.bos_token_id and ids[-1] == shipped.eos_token_id == len(shipped) - 1
        assert shipped.decode(ids, skip_special_tokens=True) == text


def test_loads_through_the_project_loaders():
    from datadream_bench.models.loading import load_clip, load_sd

    pipe = load_sd(str(SD))
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == tiny.IMAGE_SIZE
    model, tokenizer, size = load_clip(str(CLIP))
    assert size == tiny.IMAGE_SIZE and len(tokenizer) == model.config.text_config.vocab_size
