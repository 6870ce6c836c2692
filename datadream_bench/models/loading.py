"""Load Stable Diffusion and CLIP once per process, offline, from a local folder, the local HF cache or built in code."""

from __future__ import annotations

import copy
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .checkpoint import open_checkpoint
from .hub import locate

_LOADED: dict[tuple, object] = {}
_LOAD_SECONDS = [0.0]  # this process's time spent reading weights and moving them to the device


def load_seconds() -> float:
    """Seconds this process has spent loading models so far: a cell takes the difference across each stage, so its
    record keeps model loading apart from the stage's compute."""
    return _LOAD_SECONDS[0]


@contextmanager
def timed_load():
    """Count the time inside into load_seconds(): for models loaded outside load_sd / load_clip (a plugin's own)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _LOAD_SECONDS[0] += time.perf_counter() - start


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


@contextmanager
def stdout_to_stderr():
    """Send what libraries write to file descriptor 1 to stderr while a checkpoint loads.

    The tokenizers library warns with Rust's println, past Python's sys.stdout: a tokenizer_config.json written by
    transformers 4 (Stable Diffusion 2.1's, CLIP's) prints "Ignored unknown kwarg option __type" once per special
    token. stdout carries `--json` output only."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def resolve(source: str, kind: str) -> Path:
    """Where the weights of `source` are on disk (kind "sd", "clip", "captioner", ...). Never downloads."""
    return locate(source, kind).root


def model_fingerprint(source: str, kind: str, precision: str = "fp32", cache=None) -> str:
    """A hash of the bytes of every file a load of `source` reads (see checkpoint.py)."""
    return open_checkpoint(source, kind, precision).fingerprint(cache)


def precision_of(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def load_sd(source: str, device: str = "cpu", dtype: torch.dtype = torch.float32, compile_unet: bool = False):
    """The text-to-image pipeline, loaded once per (checkpoint files, device, dtype, compile) in this process."""
    checkpoint = open_checkpoint(source, "sd", precision_of(dtype))
    # keyed by the files, not the spelling: the same folder under two names loads once, a changed file loads again
    key = ("sd", checkpoint.root, checkpoint.stamp(), device, dtype, compile_unet)
    if key not in _LOADED:
        start = time.perf_counter()
        quiet_libraries()
        from diffusers import StableDiffusionPipeline

        with stdout_to_stderr():
            pipe = StableDiffusionPipeline.from_pretrained(
                checkpoint.root,
                dtype=dtype,
                local_files_only=True,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
                **checkpoint.load_kwargs(),
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
    start = time.perf_counter()
    checkpoint = open_checkpoint(source, "clip")
    key = ("clip", checkpoint.root, checkpoint.stamp())
    if key not in _LOADED:
        quiet_libraries()
        from transformers import CLIPModel, CLIPTokenizer

        # a .bin-only checkpoint (as openai/clip-vit-base-patch16 ships) goes through transformers' own loader,
        # which reads it with torch.load(weights_only=True)
        with stdout_to_stderr():
            model = CLIPModel.from_pretrained(checkpoint.root, local_files_only=True, **checkpoint.load_kwargs())
            _LOADED[key] = (model.eval(), CLIPTokenizer.from_pretrained(checkpoint.root, local_files_only=True))
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
