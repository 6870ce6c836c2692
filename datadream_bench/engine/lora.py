"""LoRA artifacts: PEFT-layout factors saved as safetensors, merged into the base weights before sampling.

Merging is exact to undo: the original weights of the touched modules are kept aside and copied back, so a long
run that swaps a LoRA in and out per class never drifts, and a resumed run sees the same base as an unbroken one.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# Where DataDream puts LoRA in Stable Diffusion (the diffusers DreamBooth-LoRA recipe).
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def sd_lora_targets() -> dict[str, tuple[str, ...]]:
    return {"unet": UNET_TARGETS, "text_encoder": TEXT_TARGETS}


@dataclass
class LoraWeights:
    """LoRA factors per component ("unet", "text_encoder") in PEFT's key layout, and the scale alpha / rank."""

    tensors: dict[str, torch.Tensor]  # "<component>.<module path>.lora_A.weight" -> (rank, in); lora_B -> (out, rank)
    rank: int
    alpha: float

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def factors(self) -> dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]:
        """(component, module path) -> (A, B)."""
        out = {}
        for key, a in self.tensors.items():
            if key.endswith(".lora_A.weight"):
                stem = key[: -len(".lora_A.weight")]
                component, module = stem.split(".", 1)
                out[(component, module)] = (a, self.tensors[stem + ".lora_B.weight"])
        return out


def save_lora(weights: LoraWeights, path: Path) -> dict:
    """Written under a unique temporary name, then renamed into place; returns the file's size and SHA-256."""
    from ..artifacts import write_with

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in weights.tensors.items()}
    # One metadata entry: safetensors writes a metadata map in hash order, so two entries would make the same
    # LoRA two different files (and digests) from one process to the next.
    meta = {"lora": json.dumps({"rank": weights.rank, "alpha": weights.alpha}, sort_keys=True)}
    return write_with(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_lora(path: Path) -> LoraWeights:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "lora" in meta:
        meta = json.loads(meta["lora"])
    if "rank" not in meta or "alpha" not in meta:
        raise ValueError(f"{path}: not a dd-bench LoRA file (metadata has no rank/alpha: {json.dumps(meta)})")
    return LoraWeights(load_file(path), int(meta["rank"]), float(meta["alpha"]))


def lora_from_peft(component: str, module: torch.nn.Module, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """The LoRA factors of a PEFT-injected module, keyed for LoraWeights."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(module, adapter_name=adapter_name)
    return {f"{component}.{k}": v.detach().clone() for k, v in state.items()}


def _linear(root: torch.nn.Module, path: str, component: str) -> torch.nn.Linear:
    try:
        layer = root.get_submodule(path)
    except AttributeError:
        raise ValueError(f"LoRA names {component}.{path}, which this model does not have") from None
    if not isinstance(layer, torch.nn.Linear):
        raise ValueError(f"LoRA on {component}.{path}: only Linear layers are supported, found {type(layer).__name__}")
    return layer


@contextmanager
@torch.no_grad()
def merged_lora(components: dict[str, torch.nn.Module], weights: LoraWeights | None):
    """Within the block, W <- W + (alpha / r) * B @ A for each targeted layer; afterwards W is restored exactly."""
    if weights is None:
        yield
        return
    saved = []
    try:
        for (component, path), (a, b) in weights.factors().items():
            if component not in components:
                raise ValueError(f"LoRA targets component {component!r}, not one of {sorted(components)}")
            layer = _linear(components[component], path, component)
            saved.append((layer, layer.weight.detach().clone()))
            w = layer.weight
            delta = weights.scale * (b.to(w.device, torch.float32) @ a.to(w.device, torch.float32))
            w.copy_((w.float() + delta).to(w.dtype))
        yield
    finally:
        for layer, original in saved:
            layer.weight.copy_(original)


@contextmanager
def unmerged_lora(components: dict[str, torch.nn.Module], weights: LoraWeights, dropout: float = 0.0):
    """The slow way, for comparisons: PEFT LoRA layers injected beside the base layers, removed afterwards."""
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    injected = []
    try:
        for component, module in components.items():
            prefix = component + "."
            state = {k[len(prefix):]: v for k, v in weights.tensors.items() if k.startswith(prefix)}
            if not state:
                continue
            targets = sorted({k.rsplit(".lora_", 1)[0] for k in state})
            config = LoraConfig(r=weights.rank, lora_alpha=weights.alpha, lora_dropout=dropout, target_modules=targets)
            inject_adapter_in_model(config, module, adapter_name="dd_bench_unmerged")
            set_peft_model_state_dict(module, state, adapter_name="dd_bench_unmerged")
            injected.append(module)
        yield
    finally:
        for module in injected:
            remove_lora_layers(module, "dd_bench_unmerged")


def remove_lora_layers(module: torch.nn.Module, adapter_name: str | None = None) -> None:
    """Replace every PEFT LoRA wrapper in module by the base layer it wraps (no merge), and drop the adapter's entry
    from the `peft_config` that injection leaves on the module (peft warns about a stale one at the next injection).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, child in list(module.named_modules()):
        if isinstance(child, BaseTunerLayer):
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, child.get_base_layer())
    config = module.__dict__.get("peft_config")
    if isinstance(config, dict) and adapter_name is not None:
        config.pop(adapter_name, None)
        if not config:
            del module.peft_config
