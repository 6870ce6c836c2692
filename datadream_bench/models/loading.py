"""Load Stable Diffusion and CLIP once per process, offline, from a local folder, the local HF cache or built in code."""

from __future__ import annotations

import copy
import os
import tempfile
import time
from pathlib import Path

import torch

from ..errors import ModelNotFoundError
from ..fingerprint import canonical_json, fingerprint

_LOADED: dict[tuple, object] = {}
_LOAD_SECONDS = [0.0]  # this process's time spent reading weights and moving them to the device


def load_seconds() -> float:
    """Seconds this process has spent loading models so far: a cell takes the difference across each stage, so its
    record keeps model loading apart from the stage's compute."""
    return _LOAD_SECONDS[0]


def quiet_libraries() -> None:
    """Library progress bars and load reports go nowhere: our own progress goes to stderr through rich."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()


def resolve(source: str, kind: str) -> Path:
    """Where the weights of `source` are on disk. kind is "sd" or "clip". Never downloads."""
    if source.startswith("tiny:"):
        return _tiny_folder(kind, int(source.split(":", 1)[1]))
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    looked = [f"a local folder {path.resolve()} (not found)"]
    if "/" in source and not source.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(source, local_files_only=True))
        except Exception as e:  # the hub raises several types for "not in the cache"
            from huggingface_hub.constants import HF_HUB_CACHE

            looked.append(f"the local Hugging Face cache {HF_HUB_CACHE} ({type(e).__name__})")
    what = {"sd": "Stable Diffusion pipeline", "clip": "CLIP model"}.get(kind, f"{kind} model")
    how = f"--{kind}-model /path/to/folder" if kind in ("sd", "clip") else "a local folder"
    raise ModelNotFoundError(
        f"{what} {source!r} not found. Looked in: " + "; ".join(looked) + ". "
        f"Provide it with {how} (a diffusers/transformers save_pretrained folder), or put it in the Hugging Face "
        f"cache on a machine with network (huggingface-cli download {source}) and copy the cache."
    )


def _tiny_folder(kind: str, seed: int) -> Path:
    from . import tiny

    folder = Path(tempfile.gettempdir()) / "dd-bench-tiny" / f"{kind}-{seed}"
    if not (folder / "done").exists():
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        (tiny.save_tiny_sd if kind == "sd" else tiny.save_tiny_clip)(tmp, seed)
        (tmp / "done").touch()
        if folder.exists():  # another process finished first: its copy is identical
            import shutil

            shutil.rmtree(tmp)
        else:
            tmp.replace(folder)
    return folder


def model_fingerprint(source: str, kind: str) -> str:
    """Configs, and name and size of each weight file: cheap to compute, changes when the checkpoint does."""
    root = resolve(source, kind)
    parts = []
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.name != "done":
            rel = str(f.relative_to(root))
            parts.append([rel, f.read_text() if f.suffix == ".json" else f.stat().st_size])
    return fingerprint(canonical_json(parts))


def load_sd(source: str, device: str = "cpu", dtype: torch.dtype = torch.float32, compile_unet: bool = False):
    """The text-to-image pipeline, loaded once per (source, device, dtype, compile) in this process."""
    key = ("sd", source, device, dtype, compile_unet)
    if key not in _LOADED:
        start = time.perf_counter()
        quiet_libraries()
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(
            resolve(source, "sd"),
            dtype=dtype,
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            use_safetensors=True,
        )
        pipe = pipe.to(device)
        from ..engine.fast import prepare

        # fused attention everywhere, channels-last on CUDA, torch.compile if asked: the same images, faster
        prepare(pipe, compile_unet=compile_unet)
        _LOADED[key] = pipe
        _LOAD_SECONDS[0] += time.perf_counter() - start
    return _LOADED[key]


def load_clip(source: str, device: str = "cpu"):
    """(CLIPModel in fp32, tokenizer, image size). A fresh copy of the weights per call, since the classifier trains
    them; the checkpoint is read from disk once per process (train, evaluate and every cell copy it from memory)."""
    key = ("clip", source)
    start = time.perf_counter()
    if key not in _LOADED:
        quiet_libraries()
        from transformers import CLIPModel, CLIPTokenizer

        root = resolve(source, "clip")
        model = CLIPModel.from_pretrained(root, local_files_only=True, use_safetensors=True).eval()
        _LOADED[key] = (model, CLIPTokenizer.from_pretrained(root, local_files_only=True))
    base, tokenizer = _LOADED[key]
    model = copy.deepcopy(base).to(device)
    _LOAD_SECONDS[0] += time.perf_counter() - start
    return model, tokenizer, model.config.vision_config.image_size


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
