"""Image-to-image in the engine: strength 0 is the VAE round trip, per-image seeds, a scheduler of its own per call."""

import numpy as np
import pytest
import torch
from PIL import Image

from datadream_bench.engine.img2img import fit_square, pad_to_square
from datadream_bench.engine.sampler import Sampler
from datadream_bench.errors import UsageError
from datadream_bench.method import ImageRequest

PROMPT = "a photo of a digit zero"


@pytest.fixture
def init_paths(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"shot{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 28, 3), dtype=np.uint8)).save(path)  # not square on purpose
        paths.append(str(path))
    return paths


def requests(paths, seed0=100):
    return [ImageRequest(0, i, seed=seed0 + i, prompt=PROMPT, init_image=p) for i, p in enumerate(paths)]


def arr(img):
    return np.asarray(img).astype(int)


def assert_same_image(a, b):
    # Batch size changes which CPU kernels run: floats differ by ~1e-6, a pixel on a rounding edge moves one level.
    a, b = arr(a), arr(b)
    assert np.abs(a - b).max() <= 1
    assert (a != b).mean() < 0.01


class UnetCalls:
    def __init__(self, unet):
        self.n = 0
        self.handle = unet.register_forward_hook(self.hook)

    def hook(self, *args):
        self.n += 1


def test_strength_zero_returns_the_init_image_through_the_vae(tiny_pipe, init_paths):
    """Tolerance: one grey level per channel (the reference below is computed here, through the VAE's mean)."""
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    calls = UnetCalls(tiny_pipe.unet)
    try:
        out = sampler.image_to_image(requests(init_paths), strength=0.0, num_inference_steps=10, guidance_scale=3.0,
                                     fit="pad")
    finally:
        calls.handle.remove()
    assert calls.n == 0, "strength 0 must not denoise"
    vae = tiny_pipe.vae
    for path, got in zip(init_paths, out):
        init = fit_square(Image.open(path).convert("RGB"), 32, "pad")
        x = torch.from_numpy(np.asarray(init, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with torch.no_grad():
            y = vae.decode(vae.encode(x).latent_dist.mean).sample[0]
        expected = ((y / 2 + 0.5).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(int)
        assert got.size == (32, 32)
        assert np.abs(arr(got) - expected).max() <= 1


def test_denoising_steps_follow_the_strength(tiny_pipe, init_paths):
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    calls = UnetCalls(tiny_pipe.unet)
    try:
        base = sampler.vae_round_trip([fit_square(Image.open(init_paths[0]).convert("RGB"), 32)])[0]
        out = sampler.image_to_image(requests(init_paths[:1]), strength=0.75, num_inference_steps=8,
                                     guidance_scale=8.0, scheduler="dpm-solver++")
        assert calls.n == 6, "8 steps at strength 0.75: sampling starts at step 2 and runs 6 steps"
    finally:
        calls.handle.remove()
    assert np.abs(arr(out[0]) - arr(base)).mean() > 1, "noise and denoising must change the image"


def test_batch_never_changes_an_image_and_seeds_do(tiny_pipe, init_paths):
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    kw = dict(strength=0.5, num_inference_steps=4, guidance_scale=3.0, scheduler="dpm-solver++")
    together = sampler.image_to_image(requests(init_paths), **kw)
    alone = [sampler.image_to_image([r], **kw)[0] for r in requests(init_paths)]
    for a, b in zip(together, alone):
        assert_same_image(a, b)
    other_seed = sampler.image_to_image(requests(init_paths[:1], seed0=7), **kw)[0]
    assert np.abs(arr(other_seed) - arr(together[0])).max() > 1


def test_a_scheduler_swap_leaves_the_shared_pipeline_alone(tiny_pipe, init_paths):
    shared_scheduler = tiny_pipe.scheduler
    config = dict(shared_scheduler.config)
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    before = sampler.text_to_image(requests(init_paths[:1]), num_inference_steps=2, guidance_scale=2.0)[0]
    view = sampler.img2img_pipeline("dpm-solver++")
    sampler.image_to_image(requests(init_paths[:1]), strength=0.5, num_inference_steps=4, guidance_scale=8.0,
                           scheduler="dpm-solver++")
    assert type(view.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert view.scheduler.config.algorithm_type == "dpmsolver++"
    assert view.scheduler.config.beta_schedule == config["beta_schedule"]
    assert tiny_pipe.scheduler is shared_scheduler and dict(tiny_pipe.scheduler.config) == config
    for name in ("unet", "vae", "text_encoder"):
        assert getattr(view, name) is getattr(tiny_pipe, name), "no second copy of the weights"
        assert getattr(sampler.img2img_pipeline(), name) is getattr(tiny_pipe, name)
    after = Sampler(tiny_pipe, "cpu", torch.float32).text_to_image(requests(init_paths[:1]), num_inference_steps=2,
                                                                   guidance_scale=2.0)[0]
    assert np.array_equal(arr(before), arr(after))
    with pytest.raises(UsageError, match="unknown scheduler"):
        sampler.img2img_pipeline("euler-x")


def test_requests_without_init_image_and_bad_strength_fail(tiny_pipe):
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    with pytest.raises(ValueError, match="init_image"):
        sampler.image_to_image([ImageRequest(0, 0, 1, PROMPT)], strength=0.5, num_inference_steps=2,
                               guidance_scale=1.0)
    with pytest.raises(ValueError, match="strength"):
        sampler.image_to_image([ImageRequest(0, 0, 1, PROMPT, init_image="x.png")], strength=1.5,
                               num_inference_steps=2, guidance_scale=1.0)


def test_pad_to_square_centres_the_image_and_resizes():
    img = Image.new("RGB", (20, 10), (200, 100, 50))
    square = pad_to_square(img)
    a = np.asarray(square)
    assert square.size == (20, 20)
    assert (a[:5] == 0).all() and (a[15:] == 0).all() and (a[5:15] == (200, 100, 50)).all()
    assert fit_square(img, 8, "pad").size == (8, 8)
    crop = np.asarray(fit_square(img, 10, "crop"))
    assert (crop == (200, 100, 50)).all()
    with pytest.raises(UsageError, match="fit"):
        fit_square(img, 8, "squash")


def test_each_request_at_its_own_strength_is_the_image_made_at_that_strength_alone(tiny_pipe, init_paths):
    from dataclasses import replace

    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    strengths = [1.0, 0.25, 0.75]
    batch = [replace(r, strength=s) for r, s in zip(requests(init_paths), strengths)]
    mixed = sampler.image_to_image(batch, num_inference_steps=4, guidance_scale=2.0)
    listed = sampler.image_to_image(requests(init_paths), strength=strengths, num_inference_steps=4,
                                    guidance_scale=2.0)
    for i, (r, s) in enumerate(zip(requests(init_paths), strengths)):
        alone = sampler.image_to_image([r], strength=s, num_inference_steps=4, guidance_scale=2.0)[0]
        assert_same_image(mixed[i], alone)
        assert_same_image(listed[i], alone)
    with pytest.raises(ValueError, match="carry none"):
        sampler.image_to_image(requests(init_paths), num_inference_steps=4, guidance_scale=2.0)
    with pytest.raises(ValueError, match="3 strengths for 2"):
        sampler.image_to_image(requests(init_paths)[:2], strength=strengths, num_inference_steps=4,
                               guidance_scale=2.0)


def test_prompt_embeddings_and_initial_latents_are_entries_of_the_sampler(tiny_pipe, init_paths):
    sampler = Sampler(tiny_pipe, "cpu", torch.float32)
    batch = requests(init_paths)[:2]
    by_prompt = sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=2.0)
    embeds = sampler.encode_prompts([r.prompt for r in batch])
    by_embeds = sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=2.0, prompt_embeds=embeds)
    by_latents = sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=2.0, latents=sampler.noise(batch))
    for a, b, c in zip(by_prompt, by_embeds, by_latents):
        assert np.array_equal(arr(a), arr(b)) and np.array_equal(arr(a), arr(c))
    other = sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=2.0,
                                  latents=sampler.noise(requests(init_paths, seed0=7)[:2]))
    assert not np.array_equal(arr(other[0]), arr(by_prompt[0]))
    img2img = sampler.image_to_image(batch, strength=0.5, num_inference_steps=4, guidance_scale=2.0)
    img2img_embeds = sampler.image_to_image(batch, strength=0.5, num_inference_steps=4, guidance_scale=2.0,
                                            prompt_embeds=embeds)
    assert all(np.array_equal(arr(a), arr(b)) for a, b in zip(img2img, img2img_embeds))
