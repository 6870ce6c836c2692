"""What produced a result: package versions, the code's git commit, the hardware. Computed once per process."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("dd-bench", "torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "datasets",
            "numpy", "pillow", "pluggy")


@functools.cache
def environment() -> dict:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    hardware = {"machine": platform.machine(), "processor": platform.processor() or None,
                "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(0)
        hardware["gpu_count"] = torch.cuda.device_count()
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "git_commit": git_commit(), "hardware": hardware}


def git_commit() -> str | None:
    """The commit of the checkout the package runs from, with "+dirty" if it has local changes; None if not a repo."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
