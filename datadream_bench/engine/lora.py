"""LoRA artifacts: PEFT-layout factors saved as safetensors, merged into the base weights before sampling.

Merging is exact to undo: the original weights of the touched modules are kept aside and copied back, so a long
run that swaps a LoRA in and out per class never drifts, and a resumed run sees the same base as an unbroken one.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence, Union

import torch
from safetensors.torch import load_file, save_file

from ..contract import LoraWeights

# Where DataDream puts LoRA in Stable Diffusion (the diffusers DreamBooth-LoRA recipe).
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def sd_lora_targets() -> dict[str, tuple[str, ...]]:
    return {"unet": UNET_TARGETS, "text_encoder": TEXT_TARGETS}


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


# One LoRA, or a weighted combination of LoRAs [(weights, w), ...] merged as sum(w * LoRA).
LoraMix = Union[LoraWeights, Sequence[tuple[LoraWeights, float]], None]


def mix_terms(weights: LoraMix) -> list[tuple[LoraWeights, float]]:
    """The (LoRA, weight) terms of a mix that change the model: a zero weight adds nothing and is left out, so a
    mix with weights (1, 0) merges exactly what the first LoRA alone merges."""
    if weights is None:
        return []
    if isinstance(weights, LoraWeights):
        return [(weights, 1.0)]
    return [(lora, float(w)) for lora, w in weights if float(w) != 0.0]


@contextmanager
@torch.no_grad()
def merged_lora(components: dict[str, torch.nn.Module], weights: LoraMix):
    """Within the block, W <- W + sum_i w_i (alpha_i / r_i) B_i @ A_i for each targeted layer; afterwards W is
    restored exactly.

    A mix costs what one LoRA costs: each touched layer is saved once and gets one matmul, its factors stacked along
    the rank (B_1 w_1 s_1 | B_2 w_2 s_2 ...) @ (A_1; A_2 ...).
    """
    terms = mix_terms(weights)
    per_layer: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor, float]]] = {}
    for lora, w in terms:
        for key, (a, b) in lora.factors().items():
            per_layer.setdefault(key, []).append((a, b, w * lora.scale))
    saved = []
    try:
        for (component, path), factors in per_layer.items():
            if component not in components:
                raise ValueError(f"LoRA targets component {component!r}, not one of {sorted(components)}")
            layer = _linear(components[component], path, component)
            saved.append((layer, layer.weight.detach().clone()))
            w = layer.weight
            w.copy_((w.float() + _delta(factors, w.device)).to(w.dtype))
        yield
    finally:
        for layer, original in saved:
            layer.weight.copy_(original)


def _delta(factors: list[tuple[torch.Tensor, torch.Tensor, float]], device) -> torch.Tensor:
    if len(factors) == 1:  # one LoRA: the same arithmetic as ever, so its images do not change
        a, b, c = factors[0]
        return c * (b.to(device, torch.float32) @ a.to(device, torch.float32))
    b = torch.cat([fb.to(device, torch.float32) * c for _, fb, c in factors], dim=1)
    a = torch.cat([fa.to(device, torch.float32) for fa, _, _ in factors], dim=0)
    return b @ a


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
