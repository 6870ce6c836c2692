"""Built-in captioners: the template fallback, and BLIP (transformers, local weights only)."""

from __future__ import annotations

import torch

from .. import api

TEMPLATE = "a photo of a {}."  # DISEF's fallback caption


class TemplateCaption(api.Captioner):
    name = "template"
    description = f"the class name in a fixed sentence ({TEMPLATE!r}): no model, the same caption for every shot"

    def caption(self, images, class_name, *, source="", device="cpu"):
        return [TEMPLATE.format(class_name) for _ in images]


# BLIP continues the text it is given, so starting from the class name keeps the class in every caption
# (a bare BLIP caption often names no class: "a plane flying in the sky").
BLIP_PREFIX = "a photo of a {},"
BLIP_BEAMS = 3
BLIP_NEW_TOKENS = 30  # with the prefix, well inside SD's 77-token prompt context

_LOADED: dict[tuple, tuple] = {}


def load_blip(source: str, device: str):
    """(BlipForConditionalGeneration, tokenizer, image processor), once per (source, device), offline."""
    key = (source, device)
    if key not in _LOADED:
        from transformers import AutoTokenizer, BlipForConditionalGeneration, BlipImageProcessorPil

        checkpoint = api.open_model(source, "captioner")
        root = checkpoint.root
        with api.quiet_load():
            model = BlipForConditionalGeneration.from_pretrained(root, local_files_only=True,
                                                                 **checkpoint.load_kwargs())
            tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
            processor = BlipImageProcessorPil.from_pretrained(root, local_files_only=True)
            model = model.to(device).eval()
        _LOADED[key] = (model, tokenizer, processor)
    return _LOADED[key]


class BlipCaption(api.Captioner):
    name = "blip"
    description = ("BLIP image captioning (BlipForConditionalGeneration), prompted with the class name; "
                   "local weights only, e.g. Salesforce/blip-image-captioning-large")
    needs_model = True

    @torch.no_grad()
    def caption(self, images, class_name, *, source="", device="cpu"):
        if not source:
            raise api.UsageError("the blip captioner needs a model: a local folder or a hub id in the local cache")
        model, tokenizer, processor = load_blip(source, device)
        pixels = processor(images=images, return_tensors="pt").pixel_values.to(device)
        prefix = tokenizer([BLIP_PREFIX.format(class_name)] * len(images), return_tensors="pt")
        out = model.generate(pixel_values=pixels, input_ids=prefix.input_ids.to(device),
                             attention_mask=prefix.attention_mask.to(device), num_beams=BLIP_BEAMS,
                             max_new_tokens=BLIP_NEW_TOKENS, do_sample=False)
        # When BLIP adds nothing, the caption is the prefix: drop its dangling comma.
        return [tokenizer.decode(ids, skip_special_tokens=True).strip().rstrip(" ,") for ids in out]


@api.hookimpl
def register_captioners(register):
    register(TemplateCaption())
    register(BlipCaption())
