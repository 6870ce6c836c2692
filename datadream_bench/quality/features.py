"""CLIP image features of a list of images, decoded and normalised as the classifier's evaluation does, and kept
in the work dir under the feature model's fingerprint so that each image set is encoded once."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..fingerprint import fingerprint

CHUNK = 1024  # images decoded at a time (a 20,000-image pool at 224 px never sits in memory whole)


def encode(paths: Sequence[Path], clip_model: str, device: str, batch_size: int = 256,
           progress: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """(N, D) float32 L2-normalised image embeddings of the base CLIP (no LoRA) at `clip_model`."""
    from ..classifier import data
    from ..classifier import model as clip
    from ..classifier.augment import test_transform
    from ..models.loading import load_clip

    model, _, size = load_clip(clip_model, device)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(paths), CHUNK):
            images = data.decode_all([str(p) for p in paths[start:start + CHUNK]], size, what="quality image")
            for i in range(0, len(images), batch_size):
                x = test_transform(images[i:i + batch_size].to(device))
                out.append(clip.image_features(model, x).float().cpu())
            progress(min(start + CHUNK, len(paths)), len(paths))
    dim = model.config.projection_dim
    return torch.cat(out).numpy() if out else np.zeros((0, dim), dtype=np.float32)


def cached(folder: Path, name: str, paths: Sequence[Path], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The features saved as <folder>/<name>.safetensors if they were made from these paths, else computed now."""
    from safetensors.numpy import load_file, save_file

    path = folder / f"{name}.safetensors"
    listing = fingerprint([str(p) for p in paths])
    if path.is_file():
        saved = load_file(path)
        if fingerprint_of(saved) == listing:
            return saved["features"]
    features = np.ascontiguousarray(compute(), dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"features": features, "listing": np.frombuffer(listing.encode(), dtype=np.uint8).copy()}, tmp)
    tmp.replace(path)
    return features


def fingerprint_of(saved: dict) -> str:
    return bytes(saved["listing"]).decode() if "listing" in saved else ""
