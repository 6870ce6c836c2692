"""Prompts must fit the text encoder's context: a tokenizer silently cuts what does not fit, and a cut prompt
("a photo of the dig") names no class. Checked before any image is made."""

from __future__ import annotations

from ..errors import UsageError


def check_prompts_fit(tokenizer, prompts: list[str], what: str) -> None:
    limit = tokenizer.model_max_length
    too_long = [(p, n) for p in prompts if (n := len(tokenizer(p, truncation=False).input_ids)) > limit]
    if too_long:
        shown = "; ".join(f"{p!r} ({n} tokens)" for p, n in too_long[:5])
        raise UsageError(f"{what}: {len(too_long)} prompt(s) longer than the text encoder's {limit} tokens: {shown}")
