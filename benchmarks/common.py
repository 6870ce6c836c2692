"""What the benchmark scripts share: timing, a random LoRA for a pipeline, image requests, machine facts."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import numpy as np
import torch



def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def timed(into: dict, key: str, device: str = "cpu"):
    """Adds the block's wall seconds to into[key], after the device has finished its queued work."""
    sync(device)
    start = time.perf_counter()
    yield
    sync(device)
    into[key] = into.get(key, 0.0) + time.perf_counter() - start


def random_lora(pipe, rank: int = 4, seed: int = 0, scale: float = 0.3, text_encoder: bool = True):
    """LoRA factors on DataDream's targets (UNet to_q/k/v/out.0, text q/k/v/out_proj) with random values."""
    from datadream_bench.engine.lora import LoraWeights, sd_lora_targets

    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for component, targets in sd_lora_targets().items():
        if component == "text_encoder" and not text_encoder:
            continue
        for name, module in getattr(pipe, component).named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(targets):
                a = torch.randn(rank, module.in_features, generator=g) * scale / module.in_features ** 0.5
                b = torch.randn(module.out_features, rank, generator=g) * scale
                tensors[f"{component}.{name}.lora_A.weight"] = a
                tensors[f"{component}.{name}.lora_B.weight"] = b
    return LoraWeights(tensors, rank=rank, alpha=float(rank))


def requests(classes: int, per_class: int, prompt: str = "a photo of a digit {}"):
    """Image requests of `classes` classes, each with its own adapter, seeds from the id."""
    from datadream_bench.method import ImageRequest

    return [ImageRequest(label, i, seed=1_000_003 * label + i, prompt=prompt.format(label), adapter=f"class-{label}")
            for label in range(classes) for i in range(per_class)]


def max_pixel_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def machine() -> dict:
    """What the numbers were measured on: the same environment record every result row carries, plus threads."""
    from datadream_bench.store.environment import environment

    env = environment()
    return {"platform": env["platform"], "python": env["python"], "cpus": env["hardware"]["cpu_count"],
            "threads": torch.get_num_threads(), "gpu": env["hardware"].get("gpu", ""), "cuda": torch.version.cuda,
            **{lib: env["packages"].get(lib) for lib in ("torch", "diffusers", "transformers", "peft")}}


def commit() -> str | None:
    from datadream_bench.store.environment import git_commit

    return git_commit()


def quiet() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from datadream_bench.models.loading import quiet_libraries

    quiet_libraries()
