"""CLIP as a classifier: LoRA on q/v of both towers, class prompts through the text tower, cosine logits."""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..errors import UsageError

LORA_TARGETS = ("q_proj", "v_proj")


def add_lora(model: torch.nn.Module, rank: int, alpha: float, dropout: float) -> None:
    """LoRA (peft's own layers) on the query and value projections of every attention block, both towers.

    Only the LoRA factors train. peft initialises A from the global RNG, so callers seed it first.
    """
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(LORA_TARGETS))
    inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)


def lora_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA factors by peft's adapter-free names, detached copies on the CPU."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().to("cpu", torch.float32).clone() for k, v in get_peft_model_state_dict(model).items()}


def load_lora_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    shapes = {k: tuple(v.shape) for k, v in lora_state(model).items()}
    expected, given = set(shapes), set(state)
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise UsageError(
            f"classifier state does not fit this CLIP's LoRA layout: {len(missing)} tensors missing "
            f"(e.g. {missing[:1]}), {len(extra)} unexpected (e.g. {extra[:1]}); was it trained with another "
            "CLIP model or LoRA rank?"
        )
    wrong = [k for k in shapes if tuple(state[k].shape) != shapes[k]]
    if wrong:
        raise UsageError(
            f"classifier state tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, this CLIP's LoRA expects "
            f"{shapes[wrong[0]]}; was it trained with another LoRA rank?"
        )
    device = next(model.parameters()).device
    set_peft_model_state_dict(model, {k: v.to(device) for k, v in state.items()})


def text_inputs(tokenizer, prompts: list[str], context: int, device: str) -> dict[str, torch.Tensor]:
    """Token ids padded to the longest prompt, not to the full context: CLIP pools at the end-of-text token under a
    causal mask, so padding past it changes nothing. A prompt longer than the context is an error, never cut."""
    enc = tokenizer(prompts, padding="longest", truncation=False, return_tensors="pt")
    if enc.input_ids.shape[1] > context:
        longest = max(prompts, key=lambda p: len(tokenizer(p).input_ids))
        raise UsageError(
            f"class prompt {longest!r} is {enc.input_ids.shape[1]} tokens, longer than the CLIP text context "
            f"({context}); it would be cut"
        )
    return {"input_ids": enc.input_ids.to(device), "attention_mask": enc.attention_mask.to(device)}


def text_features(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    pooled = model.text_model(**inputs).pooler_output
    return F.normalize(model.text_projection(pooled), dim=-1)


def image_features(model, pixels: torch.Tensor) -> torch.Tensor:
    pooled = model.vision_model(pixel_values=pixels).pooler_output
    return F.normalize(model.visual_projection(pooled), dim=-1)


def logits(model, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    return model.logit_scale.exp() * image_features(model, pixels) @ text.t()


def autocast(device: str, mode: str):
    """Mixed precision on CUDA only: "auto" is bf16 where supported, else fp16; fp32 turns it off."""
    if not device.startswith("cuda") or mode == "fp32":
        return nullcontext(), None
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype), dtype


@torch.no_grad()
def predict(model, text: dict[str, torch.Tensor], images: torch.Tensor, batch_size: int, device: str,
            precision: str) -> torch.Tensor:
    """Predicted labels for uint8 images already at the CLIP size (test transform): a (N,3,S,S) tensor, or a decoded
    set (classifier.data.Images) read a batch at a time."""
    from .augment import test_transform

    model.eval()
    ctx, _ = autocast(device, precision)
    out = []
    with ctx:
        t = text_features(model, text)
        for i in range(0, len(images), batch_size):
            batch = (images[i:i + batch_size] if isinstance(images, torch.Tensor)
                     else images.stack(range(i, min(i + batch_size, len(images)))))
            x = test_transform(batch.to(device, non_blocking=True))
            out.append(logits(model, x, t).argmax(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """{"top1": percent over all samples, "n": samples, "per_class": percent per class (None: no samples)}."""
    correct = pred == labels
    per_class = []
    for c in range(num_classes):
        mask = labels == c
        per_class.append(round(100.0 * correct[mask].float().mean().item(), 4) if mask.any() else None)
    top1 = 100.0 * correct.float().mean().item() if len(labels) else 0.0
    return {"top1": round(top1, 4), "n": int(len(labels)), "per_class": per_class}
