"""Learned tokens: a token changes only its own embedding row, the text encoder comes back exactly, prompts without
the token encode as the pipeline encodes them, and textual inversion trains the token's row and nothing else."""

import numpy as np
import pytest
import torch

from datadream_bench.api import Example, Finetuner, Schedule, Views, initial_embedding, learned_tokens
from datadream_bench.contract import ImageRequest
from datadream_bench.engine.sampler import AppliedAdapter, Sampler
from datadream_bench.errors import UsageError

TOKEN = "<digit_zero>"


def test_a_learned_token_changes_only_its_own_embedding_row(tiny_pipe):
    te = tiny_pipe.text_encoder
    base = te.get_input_embeddings()
    before = base.weight.detach().clone()
    vector = torch.randn(before.shape[1])
    with learned_tokens(te, tiny_pipe.tokenizer, {TOKEN: vector}) as (vocab, rows):
        table = te.get_input_embeddings().weight
        assert table.shape[0] == before.shape[0] + 1
        assert torch.equal(table[: before.shape[0]], before)  # every base row as it was
        assert torch.equal(table[vocab.ids[TOKEN]], vector)  # the new row is the token's vector
        ids = vocab(["a photo of a " + TOKEN])
        assert (ids == vocab.ids[TOKEN]).sum() == 1  # one token, not its characters
    assert te.get_input_embeddings() is base and torch.equal(base.weight, before)
    assert TOKEN not in tiny_pipe.tokenizer.get_vocab()  # the shared tokenizer never learned it


def test_prompts_without_the_token_encode_exactly_as_the_pipeline_does(tiny_pipe):
    sampler = Sampler(tiny_pipe)
    prompts = ["a photo of a digit zero", "a photo of a digit one"]
    plain = sampler.encode_prompts(prompts)
    expected, _ = tiny_pipe.encode_prompt(prompts, "cpu", 1, False)
    assert torch.equal(plain, expected)
    with sampler.adapted(AppliedAdapter(tokens={TOKEN: torch.zeros(plain.shape[-1])})):
        assert torch.equal(sampler.encode_prompts(prompts), plain)
        with_token = sampler.encode_prompts(["a photo of a " + TOKEN])
    assert sampler.vocabulary is None
    assert not torch.equal(with_token, plain[:1])


def test_images_with_a_token_use_its_vector(tiny_pipe):
    sampler = Sampler(tiny_pipe)
    batch = [ImageRequest(0, 0, seed=3, prompt="a photo of a " + TOKEN)]
    g = torch.Generator().manual_seed(0)
    dim = tiny_pipe.text_encoder.get_input_embeddings().weight.shape[1]

    def draw(vector):
        with sampler.adapted(AppliedAdapter(tokens={TOKEN: vector})):
            return np.asarray(sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=2.0)[0])

    v = torch.randn(dim, generator=g)
    assert np.array_equal(draw(v), draw(v))
    assert not np.array_equal(draw(v), draw(torch.randn(dim, generator=g) * 3))


def test_a_placeholder_that_is_already_a_word_is_refused(tiny_pipe):
    word = next(iter(tiny_pipe.tokenizer.get_vocab()))
    with pytest.raises(UsageError, match="already a word"):
        with learned_tokens(tiny_pipe.text_encoder, tiny_pipe.tokenizer, {word: torch.zeros(64)}):
            pass


def test_textual_inversion_trains_the_token_row_and_nothing_else(tiny_pipe, digits):
    te = tiny_pipe.text_encoder
    before = {f"{c}.{k}": v.detach().clone() for c in ("unet", "text_encoder", "vae")
              for k, v in getattr(tiny_pipe, c).state_dict().items()}
    flags = {n: p.requires_grad for n, p in te.named_parameters()}
    init = initial_embedding(te, tiny_pipe.tokenizer, "the")  # three byte tokens here: their mean
    examples = [Example(s.path, ("a photo of a " + TOKEN, "a rendering of a " + TOKEN))
                for s in digits.by_class("train")[0][:4]]
    schedule = Schedule(lr=5e-2, steps=6, batch_size=2, decay="constant", max_grad_norm=None)
    with Finetuner(tiny_pipe, examples, schedule, seed=0, views=Views(crop="resize", flip=0.5),
                   tokens={TOKEN: init}) as t:
        assert [p.shape for p in t.params] == [(1, init.shape[0])]  # the one row is all that trains
        losses = t.train()
        learned = t.token_embeddings()[TOKEN]
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert not torch.allclose(learned, init)
    after = {f"{c}.{k}": v for c in ("unet", "text_encoder", "vae")
             for k, v in getattr(tiny_pipe, c).state_dict().items()}
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert {n: p.requires_grad for n, p in te.named_parameters()} == flags
