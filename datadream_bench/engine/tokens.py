"""Learned tokens (textual inversion): new words for the text encoder, each with its own embedding vector.

The shared pipeline is never changed for good. Within `learned_tokens(...)`, the text encoder's token embedding is
wrapped so that ids past the base vocabulary read the learned vectors, and a private copy of the tokenizer knows
the placeholders; ids of the base vocabulary read the base rows, untouched. On exit the original embedding module is
put back, so the text encoder is exactly what it was.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import UsageError


class ExtendedEmbedding(torch.nn.Module):
    """A token embedding with rows after the base vocabulary: id < V reads the base, id >= V reads extra[id - V]."""

    def __init__(self, base: torch.nn.Embedding, extra: torch.Tensor):
        super().__init__()
        self.base = base
        self.extra = extra if isinstance(extra, torch.nn.Parameter) else torch.nn.Parameter(extra, requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The whole table, base rows then learned ones (what a caller of get_input_embeddings().weight expects)."""
        return torch.cat([self.base.weight, self.extra.to(self.base.weight.dtype)], dim=0)

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings + self.extra.shape[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        v = self.base.num_embeddings
        out = self.base(ids.clamp(max=v - 1))
        learned = ids >= v
        if not learned.any():
            return out
        rows = self.extra.to(out.dtype)[(ids - v).clamp(min=0)]
        return torch.where(learned.unsqueeze(-1), rows, out)


@dataclass
class TokenVocabulary:
    """A tokenizer that knows the placeholders, and the text-encoder id of each."""

    tokenizer: object
    ids: dict[str, int]  # placeholder -> id in the extended embedding
    _remap: dict[int, int]  # the tokenizer's id of a placeholder -> its id in the extended embedding

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """Token ids padded to the model's context, as the pipeline tokenizes a prompt."""
        tok = self.tokenizer
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        for old, new in self._remap.items():
            ids[ids == old] = new
        return ids


def vocabulary(tokenizer, names: list[str], base_size: int) -> TokenVocabulary:
    """A copy of tokenizer that encodes each placeholder in `names` as one token (the shared tokenizer is left as
    it is); their ids follow the text encoder's base_size rows."""
    tok = copy.deepcopy(tokenizer)
    known = tok.get_vocab()
    clash = [n for n in names if n in known]
    if clash:
        raise UsageError(f"learned token {clash[0]!r} is already a word of the tokenizer: choose another placeholder")
    tok.add_tokens(list(names))
    remap = {tok.convert_tokens_to_ids(n): base_size + i for i, n in enumerate(names)}
    return TokenVocabulary(tok, {n: base_size + i for i, n in enumerate(names)}, remap)


@contextmanager
def learned_tokens(text_encoder, tokenizer, tokens: dict[str, torch.Tensor], *, trainable: bool = False):
    """Within the block the text encoder knows `tokens` (placeholder -> vector); yields (vocabulary, extra rows).

    trainable: the extra rows are a Parameter that takes gradients (textual inversion); the base rows never do.
    """
    base = text_encoder.get_input_embeddings()
    if isinstance(base, ExtendedEmbedding):
        raise RuntimeError("learned tokens are already installed on this text encoder; nesting is not supported")
    names = list(tokens)
    dim = base.weight.shape[1]
    bad = [n for n, v in tokens.items() if tuple(v.shape) != (dim,)]
    if bad:
        raise UsageError(f"learned token {bad[0]!r} has shape {tuple(tokens[bad[0]].shape)}; this text encoder's "
                         f"embeddings are ({dim},)")
    vocab = vocabulary(tokenizer, names, base.num_embeddings)
    extra = torch.stack([tokens[n].detach().to(base.weight.device, torch.float32) for n in names]) if names else \
        torch.zeros(0, dim, device=base.weight.device)
    extra = torch.nn.Parameter(extra.clone(), requires_grad=trainable)
    text_encoder.set_input_embeddings(ExtendedEmbedding(base, extra))
    try:
        yield vocab, extra
    finally:
        text_encoder.set_input_embeddings(base)


def encode_prompts(text_encoder, vocab: TokenVocabulary, prompts: list[str], device) -> torch.Tensor:
    """The text encoder's hidden states for prompts, as the pipeline computes them (last layer, padded to the
    context; the attention mask only where the encoder's config asks for it)."""
    ids = vocab(prompts).to(device)
    mask = None
    if getattr(text_encoder.config, "use_attention_mask", False):
        mask = (ids != vocab.tokenizer.pad_token_id).long()
    return text_encoder(ids, attention_mask=mask)[0]


def initial_embedding(text_encoder, tokenizer, word: str) -> torch.Tensor:
    """The embedding a learned token starts from: that of `word` (the mean of its tokens' rows when the tokenizer
    splits it, e.g. byte-level tokenizers)."""
    ids = tokenizer(word, add_special_tokens=False).input_ids
    if not ids:
        raise UsageError(f"initializer word {word!r} encodes to no tokens")
    table = text_encoder.get_input_embeddings().weight
    return table[torch.tensor(ids, device=table.device)].detach().float().mean(0).cpu()
