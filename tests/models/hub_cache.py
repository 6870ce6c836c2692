"""A Hugging Face hub cache of the checkpoints the paper profile uses, shrunk, built in code (nothing downloaded).

Each repository has the file names and config keys of the published one, with small values (a few layers of 32
channels), random weights and a small tokenizer, and lies on disk as the hub library lays out its cache:

    <HF_HOME>/hub/models--org--name/refs/main              the commit, no newline
    <HF_HOME>/hub/models--org--name/blobs/<sha256>         weight files (stored in git LFS: named by their sha256)
    <HF_HOME>/hub/models--org--name/blobs/<git sha1>       other files (named by their git blob hash)
    <HF_HOME>/hub/models--org--name/snapshots/<commit>/... relative links into blobs/

The four repositories:
- stabilityai/stable-diffusion-2-1-base: model_index.json, scheduler, tokenizer (vocab.json + merges.txt, no
  tokenizer.json), text_encoder, unet and vae with safetensors, .bin and fp16 safetensors variants.
- openai/clip-vit-base-patch16: pytorch_model.bin only (torch.save of the state dict, as the hub ships it; its
  safetensors file sits on an unmerged pull-request ref), the old config layout with text_config_dict.
- Salesforce/blip-image-captioning-large: model.safetensors, BERT word-piece tokenizer files, processor config.
- laion/CLIP-ViT-H-14-laion2B-s32B-b79K: model.safetensors and pytorch_model.bin.

The tokenizers are small but real: CLIP's byte-level BPE with every byte as a symbol (so any text encodes) and a
few merges; BLIP's word-piece vocabulary of single characters, so that a 30-token BLIP caption stays within SD's
77-token prompt context.

Usable from tests and benchmarks: build_hub_cache(HF_HOME folder) -> the folder; point HF_HOME at it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import string
import tempfile
from pathlib import Path

import safetensors.torch
import torch

SD = "stabilityai/stable-diffusion-2-1-base"
CLIP = "openai/clip-vit-base-patch16"
BLIP = "Salesforce/blip-image-captioning-large"
CLIP_H = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
LFS_SUFFIXES = (".safetensors", ".bin")


# ---------------------------------------------------------------------------------------------------- tokenizers
def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's BPE vocabulary shrunk: every byte symbol, alone and word-final, a few merges, the two special tokens
    last (CLIP pools its text at the largest id, which must be <|endoftext|>)."""
    from tokenizers.pre_tokenizers import ByteLevel

    symbols = sorted(ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    merges = [("p", "h"), ("ph", "o"), ("pho", "t"), ("phot", "o</w>"), ("o", "f</w>"), ("a", "t"), ("s", "a")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def added_token(content: str) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True, "rstrip": False,
            "single_word": False}


def clip_tokenizer_files(name_or_path: str, pad: str) -> dict[str, bytes]:
    vocab, merges = clip_vocab()
    special = {"bos_token": added_token("<|startoftext|>"), "eos_token": added_token("<|endoftext|>"),
               "unk_token": added_token("<|endoftext|>"), "pad_token": pad}
    config = {"add_prefix_space": False, **special, "do_lower_case": True, "errors": "replace",
              "model_max_length": 77, "name_or_path": name_or_path,
              "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer"}
    return {"vocab.json": dumps(vocab), "merges.txt": ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
            .encode(), "tokenizer_config.json": dumps(config), "special_tokens_map.json": dumps(special)}


def blip_vocab() -> list[str]:
    """BERT's word pieces shrunk to single characters; BLIP's [DEC] (its bos) and [ENC] come last, as in its vocab."""
    chars = string.ascii_lowercase + string.digits
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(chars) + list(",.!?'-") + ["##" + c for c in chars]
            + ["[DEC]", "[ENC]"])


# ------------------------------------------------------------------------------------------------------- configs
def legacy_nested(**values) -> dict:
    """A sub-config as transformers 4 wrote it into config.json: every PretrainedConfig attribute, then the model's."""
    base = {
        "_name_or_path": "", "add_cross_attention": False, "architectures": None, "bad_words_ids": None,
        "begin_suppress_tokens": None, "chunk_size_feed_forward": 0, "cross_attention_hidden_size": None,
        "decoder_start_token_id": None, "diversity_penalty": 0.0, "do_sample": False, "early_stopping": False,
        "encoder_no_repeat_ngram_size": 0, "exponential_decay_length_penalty": None, "finetuning_task": None,
        "forced_bos_token_id": None, "forced_eos_token_id": None, "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
        "is_decoder": False, "is_encoder_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
        "length_penalty": 1.0, "max_length": 20, "min_length": 0, "no_repeat_ngram_size": 0, "num_beam_groups": 1,
        "num_beams": 1, "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False,
        "output_scores": False, "prefix": None, "problem_type": None, "pruned_heads": {},
        "remove_invalid_values": False, "repetition_penalty": 1.0, "return_dict": True,
        "return_dict_in_generate": False, "sep_token_id": None, "suppress_tokens": None,
        "task_specific_params": None, "temperature": 1.0, "tf_legacy_loss": False, "tie_encoder_decoder": False,
        "tie_word_embeddings": True, "tokenizer_class": None, "top_k": 50, "top_p": 1.0, "torch_dtype": None,
        "torchscript": False, "transformers_version": "4.26.0.dev0", "typical_p": 1.0, "use_bfloat16": False,
    }
    return {**base, **values}


def sd_configs(vocab_size: int) -> dict[str, dict]:
    """stabilityai/stable-diffusion-2-1-base's configs: the same keys, small values (a 64 px model)."""
    diffusers_version = {"_diffusers_version": "0.10.0.dev0"}
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionPipeline", **diffusers_version,
            "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        },
        "scheduler/scheduler_config.json": {
            "_class_name": "PNDMScheduler", **diffusers_version, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon",
            "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
        },
        "unet/config.json": {
            "_class_name": "UNet2DConditionModel", **diffusers_version, "act_fn": "silu",
            "attention_head_dim": [1, 2, 2, 4], "block_out_channels": [32, 32, 32, 32],
            "center_input_sample": False, "cross_attention_dim": 32,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                 "DownBlock2D"],
            "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
            "in_channels": 4, "layers_per_block": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
            "norm_num_groups": 8, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
            "sample_size": 8,
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "use_linear_projection": True,
        },
        "vae/config.json": {
            "_class_name": "AutoencoderKL", **diffusers_version, "act_fn": "silu",
            "block_out_channels": [32, 32, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "in_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 32, "out_channels": 3,
            "sample_size": 64, "up_block_types": ["UpDecoderBlock2D"] * 4,
        },
        "text_encoder/config.json": {
            "_name_or_path": "hf-models/stable-diffusion-v2-base/text_encoder", "architectures": ["CLIPTextModel"],
            "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu",
            "hidden_size": 32, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 64,
            "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
            "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 1, "projection_dim": 32,
            "torch_dtype": "float32", "transformers_version": "4.25.0.dev0", "vocab_size": vocab_size,
        },
        "feature_extractor/preprocessor_config.json": {
            "crop_size": 224, "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
            "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD, "resample": 3, "size": 224,
        },
    }


def clip_b16_config(vocab_size: int) -> dict:
    """openai/clip-vit-base-patch16's config.json layout (transformers 4 era: full sub-configs plus the *_dict
    copies), shrunk: 32 px images in 16 px patches, 2 layers of width 32."""
    # The *_dict copies hold what differs from the library's defaults, and transformers builds the sub-configs from
    # them: the shrunk sizes, and the ids of the shrunk vocabulary's special tokens (49406/49407 in the real one).
    vocab, _ = clip_vocab()
    text = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, projection_dim=16,
                vocab_size=vocab_size, bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, patch_size=16,
                  projection_dim=16, image_size=32)
    return {
        "_commit_hash": None, "_name_or_path": CLIP, "architectures": ["CLIPModel"], "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592, "model_type": "clip", "projection_dim": 16,
        "text_config": legacy_nested(
            attention_dropout=0.0, dropout=0.0, hidden_act="quick_gelu", initializer_factor=1.0,
            initializer_range=0.02, layer_norm_eps=1e-05, max_position_embeddings=77, model_type="clip_text_model",
            pad_token_id=1, **text),
        "text_config_dict": text,
        "torch_dtype": "float32", "transformers_version": None,
        "vision_config": legacy_nested(
            attention_dropout=0.0, dropout=0.0, hidden_act="quick_gelu", initializer_factor=1.0,
            initializer_range=0.02, layer_norm_eps=1e-05, model_type="clip_vision_model", num_channels=3, **vision),
        "vision_config_dict": vision,
    }


def clip_h_config(vocab_size: int) -> dict:
    """laion/CLIP-ViT-H-14-laion2B-s32B-b79K's config.json layout, shrunk: 28 px images in 14 px patches."""
    return {
        "_commit_hash": None, "_name_or_path": CLIP_H, "architectures": ["CLIPModel"], "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592, "model_type": "clip", "projection_dim": 24,
        "text_config": {"hidden_act": "gelu", "hidden_size": 32, "intermediate_size": 64, "model_type":
                        "clip_text_model", "num_attention_heads": 2, "num_hidden_layers": 2, "projection_dim": 24,
                        "vocab_size": vocab_size, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
        "torch_dtype": "float32", "transformers_version": None,
        "vision_config": {"hidden_act": "gelu", "hidden_size": 40, "image_size": 28, "intermediate_size": 80,
                          "model_type": "clip_vision_model", "num_attention_heads": 2, "num_hidden_layers": 2,
                          "patch_size": 14, "projection_dim": 24},
    }


def blip_config(vocab: list[str]) -> dict:
    """Salesforce/blip-image-captioning-large's config.json layout, shrunk: 32 px images, 2 layers each."""
    ids = {token: i for i, token in enumerate(vocab)}
    return {
        "_commit_hash": None, "architectures": ["BlipForConditionalGeneration"], "image_text_hidden_size": 32,
        "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "blip", "projection_dim": 32,
        "text_config": legacy_nested(
            attention_probs_dropout_prob=0.0, bos_token_id=ids["[DEC]"], encoder_hidden_size=32,
            eos_token_id=ids["[SEP]"], hidden_act="gelu", hidden_dropout_prob=0.0, hidden_size=32,
            initializer_factor=1.0, initializer_range=0.02, intermediate_size=64, is_decoder=True,
            layer_norm_eps=1e-12, max_position_embeddings=64, model_type="blip_text_model",
            num_attention_heads=2, num_hidden_layers=2, pad_token_id=ids["[PAD]"], projection_dim=32,
            sep_token_id=ids["[SEP]"], use_cache=True, vocab_size=len(vocab)),
        "torch_dtype": "float32", "transformers_version": None,
        "vision_config": legacy_nested(
            attention_dropout=0.0, dropout=0.0, hidden_act="gelu", hidden_size=32, image_size=32,
            initializer_factor=1.0, initializer_range=1e-10, intermediate_size=64, layer_norm_eps=1e-05,
            model_type="blip_vision_model", num_attention_heads=2, num_channels=3, num_hidden_layers=2,
            patch_size=16, projection_dim=32),
    }


def blip_files(vocab: list[str]) -> dict[str, bytes]:
    special = {"bos_token": "[DEC]", "cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
               "sep_token": "[SEP]", "unk_token": "[UNK]", "additional_special_tokens": ["[ENC]"]}
    tokenizer_config = {"cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True,
                        "mask_token": "[MASK]", "model_max_length": 512, "name_or_path": "bert-base-uncased",
                        "never_split": None, "pad_token": "[PAD]", "processor_class": "BlipProcessor",
                        "sep_token": "[SEP]", "special_tokens_map_file": None, "strip_accents": None,
                        "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]"}
    processor = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
                 "image_processor_type": "BlipImageProcessor", "image_std": CLIP_STD,
                 "processor_class": "BlipProcessor", "resample": 3, "rescale_factor": 0.00392156862745098,
                 "size": {"height": 32, "width": 32}}
    return {"vocab.txt": ("\n".join(vocab) + "\n").encode(), "tokenizer_config.json": dumps(tokenizer_config),
            "special_tokens_map.json": dumps(special), "preprocessor_config.json": dumps(processor)}


def clip_processor(size: int) -> dict:
    return {"crop_size": size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
            "resample": 3, "size": size}


# ------------------------------------------------------------------------------------------------------- weights
def dumps(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def safetensors_bytes(model, dtype=None) -> bytes:
    """The model's weights as save_pretrained writes them (shared tensors stored once), optionally cast."""
    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        files = [f for f in Path(tmp).iterdir() if f.suffix == ".safetensors"]
        assert len(files) == 1, files
        return files[0].read_bytes()


def torch_bin_bytes(model) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def sd_repo(seed: int = 0) -> dict[str, bytes]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vocab, _ = clip_vocab()
    configs = sd_configs(len(vocab))
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(configs["unet/config.json"])
    vae = AutoencoderKL.from_config(configs["vae/config.json"])
    text_encoder = CLIPTextModel(CLIPTextConfig.from_dict(configs["text_encoder/config.json"]))
    files = {name: dumps(config) for name, config in configs.items()}
    files.update({f"tokenizer/{n}": data for n, data in clip_tokenizer_files(
        "hf-models/stable-diffusion-v2-base/tokenizer", pad="!").items()})
    for sub, model in (("unet", unet), ("vae", vae)):
        files[f"{sub}/diffusion_pytorch_model.safetensors"] = safetensors_bytes(model)
        files[f"{sub}/diffusion_pytorch_model.fp16.safetensors"] = safetensors_bytes(model, torch.float16)
        files[f"{sub}/diffusion_pytorch_model.bin"] = torch_bin_bytes(model)
    # The published text encoder names its tensors as transformers 4 did (text_model.encoder...), not as
    # transformers 5 saves them (encoder...): transformers must map the old names on load.
    state = {f"text_model.{k}": v.contiguous() for k, v in text_encoder.state_dict().items()}
    files["text_encoder/model.safetensors"] = safetensors.torch.save(state, metadata={"format": "pt"})
    files["text_encoder/model.fp16.safetensors"] = safetensors.torch.save(
        {k: v.half() for k, v in state.items()}, metadata={"format": "pt"})
    buf = io.BytesIO()
    torch.save(state, buf)
    files["text_encoder/pytorch_model.bin"] = buf.getvalue()
    return files


def clip_b16_repo(seed: int = 0) -> dict[str, bytes]:
    from transformers import CLIPConfig, CLIPModel

    vocab, _ = clip_vocab()
    config = clip_b16_config(len(vocab))
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig.from_dict(config))
    return {"config.json": dumps(config), "pytorch_model.bin": torch_bin_bytes(model),
            "preprocessor_config.json": dumps(clip_processor(32)),
            **clip_tokenizer_files(CLIP, pad="<|endoftext|>")}


def clip_h_repo(seed: int = 0) -> dict[str, bytes]:
    from transformers import CLIPConfig, CLIPModel

    vocab, _ = clip_vocab()
    config = clip_h_config(len(vocab))
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig.from_dict(config))
    return {"config.json": dumps(config), "model.safetensors": safetensors_bytes(model),
            "pytorch_model.bin": torch_bin_bytes(model), "preprocessor_config.json": dumps(clip_processor(28)),
            **clip_tokenizer_files(CLIP_H, pad="!")}


def blip_repo(seed: int = 0) -> dict[str, bytes]:
    from transformers import BlipConfig, BlipForConditionalGeneration

    vocab = blip_vocab()
    config = blip_config(vocab)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig.from_dict(config))
    return {"config.json": dumps(config), "model.safetensors": safetensors_bytes(model), **blip_files(vocab)}


REPOS = {SD: sd_repo, CLIP: clip_b16_repo, BLIP: blip_repo, CLIP_H: clip_h_repo}


# ------------------------------------------------------------------------------------------------- cache layout
def blob_name(name: str, data: bytes) -> str:
    """The hub's blob name: sha256 of the bytes for a file kept in git LFS, else its git blob hash."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_repo(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "main") -> Path:
    """Lay `files` out as the hub library caches a snapshot; returns the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(json.dumps({n: blob_name(n, d) for n, d in sorted(files.items())}).encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / blob_name(name, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


def build_hub_cache(hf_home: str | Path, repos=tuple(REPOS)) -> Path:
    """HF_HOME folder with the shrunk repositories in hf_home/hub; returns hf_home."""
    from datadream_bench.models.loading import quiet_libraries

    quiet_libraries()
    hf_home = Path(hf_home)
    for repo_id in repos:
        write_repo(hf_home / "hub", repo_id, REPOS[repo_id]())
    return hf_home


def snapshot(hf_home: str | Path, repo_id: str) -> Path:
    repo = Path(hf_home) / "hub" / f"models--{repo_id.replace('/', '--')}"
    return repo / "snapshots" / (repo / "refs" / "main").read_text()
