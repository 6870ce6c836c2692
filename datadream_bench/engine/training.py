"""Training on the shared pipeline, and giving it back as it was.

The pipeline is loaded once per process and shared by every unit, method and cell. A method that trains in its
adapt stage (LoRA layers injected, requires_grad flipped, train mode, learned token rows) does so inside
`restored(...)`: on exit, even after an error, whatever training changed on the modules is put back.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def snapshot(module: torch.nn.Module) -> dict:
    """What training may change on a module, besides its weights: attributes, grad flags, train/eval modes."""
    return {
        "attrs": set(module.__dict__),
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "training": {n: m.training for n, m in module.named_modules()},
        # peft adds its adapter to a peft_config dict already on the module (left by other PEFT users) in place.
        "peft_config": dict(module.peft_config) if isinstance(getattr(module, "peft_config", None), dict) else None,
    }


def put_back(module: torch.nn.Module, saved: dict) -> None:
    from .lora import remove_lora_layers

    remove_lora_layers(module)
    for attr in set(module.__dict__) - saved["attrs"]:  # peft leaves its config on the model
        delattr(module, attr)
    if saved["peft_config"] is not None:
        module.peft_config.clear()
        module.peft_config.update(saved["peft_config"])
    for n, p in module.named_parameters():
        p.requires_grad_(saved["requires_grad"][n])
        p.grad = None
    for n, m in module.named_modules():
        m.training = saved["training"][n]


@contextmanager
def restored(*modules: torch.nn.Module):
    """Within the block, train freely on `modules` (the pipeline's unet, text_encoder, vae ...); on exit each is
    put back: PEFT LoRA layers removed (never merged), attributes training added dropped, peft_config, requires_grad
    flags and train/eval modes restored, gradients cleared. Base weights are never written by training that only
    optimises adapter parameters, so the module is then exactly the base it was.
    """
    saved = [(m, snapshot(m)) for m in modules]
    try:
        yield
    finally:
        for m, s in saved:
            put_back(m, s)
