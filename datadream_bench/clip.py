"""Models for plugins, offline: CLIP for classifiers (the backbone and the images it takes), and the local folder of
any other model a plugin loads itself (open_model, quiet_load).

A classifier gets `TrainJob.clip_model` (a local folder, a cached hub id, or "tiny:N") and turns it into weights with
load_clip; images become CLIP's input with clip_pixels (one call) or decode_images + normalize_pixels (the decoded
images kept in the work dir's cache between stages, settings and cells, then normalised batch by batch).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def load_clip(source: str, device: str = "cpu"):
    """(transformers CLIPModel in fp32, its tokenizer, its image size), offline. Each call returns a fresh copy of the
    weights (a classifier may train them); the checkpoint is read from disk once per process."""
    from .models.loading import load_clip as load

    return load(source, device)


def open_model(source: str, kind: str):
    """A model a plugin loads itself, found offline and checked before any weight is read: a local folder, or a hub
    id already in the local Hugging Face cache (kind "clip", "sd", "captioner", ... names what it must hold). Load
    it from `.root` with from_pretrained(root, local_files_only=True, **.load_kwargs()), which loads exactly the
    files checked. A missing or broken model is a usage error saying where dd-bench looked and what is wrong."""
    from .models.checkpoint import open_checkpoint
    from .models.loading import quiet_libraries

    quiet_libraries()
    return open_checkpoint(source, kind)


@contextmanager
def quiet_load():
    """A context for from_pretrained calls (and moving the weights to the device): what the libraries print goes to
    stderr (stdout carries --json only), and the time spent counts as model loading in the cell's record
    (model_load_s), apart from the stage's compute."""
    from .models.loading import stdout_to_stderr, timed_load

    with timed_load(), stdout_to_stderr():
        yield


def decode_images(paths: Sequence[str | Path], size: int, *, cache_dir: Path | None = None,
                  workers: int = 0) -> torch.Tensor:
    """(N, 3, size, size) uint8: each image's shorter side resized to size (bicubic), then its central square.

    With cache_dir (TrainJob.cache_dir), the decoded array is kept there and reused by any later call for the same
    files and size. A file that does not decode is a UsageError naming it.
    """
    from .classifier.data import decode_all

    return decode_all([str(p) for p in paths], size, workers, cache_dir)


def normalize_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) images at the CLIP size -> the floats CLIP takes (CLIP's mean and std)."""
    from .classifier.augment import test_transform

    return test_transform(images)


def clip_pixels(images: Sequence[Image.Image | str | Path], size: int, device: str = "cpu") -> torch.Tensor:
    """CLIP's test view of images or image files: shorter side resized (bicubic), central square, normalised."""
    from .datasets.images import load_rgb
    from .engine.img2img import fit_square

    arrays = [np.asarray(fit_square(load_rgb(img) if isinstance(img, (str, Path)) else img, size, "crop"),
                         dtype=np.uint8) for img in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)
    return normalize_pixels(x)
