"""Adapt-stage artifacts on disk: a unit's learned tokens and tensors as safetensors (its LoRA: engine.lora), its
data in its record; and what the engine applies for a request's adapter (one unit or a weighted mix), read from
them. The runner writes the unit's record last, with each file's size and digest (runner.stages.adapt)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..contract import Adaptation, Adapter, LoraWeights, adapter_units
from .lora import load_lora
from .sampler import AppliedAdapter

TOKEN, TENSOR = "token/", "tensor/"


def save_tensors(result: Adaptation, stem: Path) -> dict | None:
    """Write the unit's learned tokens and other tensors beside `stem` (one safetensors file); return what the
    unit's record says of them (names, file, size and digest), or None when it has none."""
    named = {TOKEN + k: v for k, v in result.tokens.items()}
    named.update({TENSOR + k: v for k, v in result.tensors.items()})
    if not named:
        return None
    from ..artifacts import write_with

    path = stem.with_suffix(".tensors.safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in named.items()}
    digest = write_with(path, lambda tmp: save_file(tensors, tmp))
    return {"file": path.name, **digest, "tokens": sorted(result.tokens), "tensors": sorted(result.tensors)}


def load_adaptation(folder: Path, record: dict) -> Adaptation:
    """The unit's data, learned tokens and tensors from its record (its LoRA stays on disk: see AdapterLoader)."""
    out = Adaptation(data=record.get("data", {}))
    if record.get("tensors"):
        named = load_file(folder / record["tensors"]["file"])
        out.tokens = {k[len(TOKEN):]: v for k, v in named.items() if k.startswith(TOKEN)}
        out.tensors = {k[len(TENSOR):]: v for k, v in named.items() if k.startswith(TENSOR)}
    return out


class AdapterLoader:
    """Builds what the engine applies for a request's adapter: the LoRA terms of its units (read from disk, the
    most recently used kept in memory, so a class's mixes of the same per-image LoRAs read each file once) and
    the learned tokens of its units."""

    def __init__(self, lora_files: dict[str, Path], adaptations: dict[str, Adaptation], keep: int = 64):
        self.lora_files, self.adaptations, self.keep = lora_files, adaptations, keep
        self._cache: OrderedDict[str, LoraWeights] = OrderedDict()

    def known(self, unit: str) -> bool:
        """Whether the unit made something the engine can apply (a LoRA or learned tokens)."""
        return unit in self.lora_files or bool(getattr(self.adaptations.get(unit), "tokens", None))

    def lora(self, unit: str) -> LoraWeights:
        if unit in self._cache:
            self._cache.move_to_end(unit)
        else:
            self._cache[unit] = load_lora(self.lora_files[unit])
            if len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return self._cache[unit]

    def __call__(self, adapter: Adapter) -> AppliedAdapter:
        applied = AppliedAdapter()
        for unit, weight in adapter_units(adapter):
            if unit in self.lora_files:
                applied.loras.append((self.lora(unit), weight))
            tokens = getattr(self.adaptations.get(unit), "tokens", {}) or {}
            for name, vector in tokens.items():
                if name in applied.tokens and not torch.equal(applied.tokens[name], vector):
                    raise ValueError(f"units of one adapter give the learned token {name!r} different vectors")
                applied.tokens[name] = vector
        return applied
