"""Pretrain the demo world's tiny Stable Diffusion and CLIP on digits 5-9 and write them into the package.

    python scripts/pretrain_demo.py            # train, save to datadream_bench/models/demo_weights/{sd,clip}, check
    python scripts/pretrain_demo.py --check-only --grid /tmp/demo_sd_grid.png   # only re-measure the saved weights

The architecture is exactly datadream_bench/models/tiny.py's, so tests (random weights) and the demo (these weights)
run the same code. Only base-class images (digits 5-9) are ever trained on; 10% of them per class are held out for
the checks. Target digits 0-4 are read only by the last check, to show that CLIP never learned them.

Stages (fixed seeds, single process, CPU):
1. VAE: L1 + MSE reconstruction + a small KL term; scaling_factor = 1 / std of the training latents.
2. UNet and text encoder together: epsilon-prediction DDPM loss on SD 2.1-base's schedule, class prompt
   "a photo of a digit five", 10% empty prompt so that classifier-free guidance works.
3. CLIP: symmetric contrastive loss between images and the (de-duplicated) class prompts of the batch.
Augmentation everywhere: random shifts of up to 2 px.

The shipped weights were made by `OMP_WAIT_POLICY=PASSIVE python scripts/pretrain_demo.py` (one thread, the
default: the thread count changes the order of float sums, so it is part of what fixes the result). On a machine
shared with other jobs, passive waiting and one thread were faster than two spinning threads.

Measured (torch 2.13 CPU, diffusers 0.42.1, transformers 5.24, seed 0), 2-core machine shared with other jobs
(load average 4-10), one thread: VAE 389 s, UNet + text encoder 743 s, CLIP 21 s, 1153 s in all; the checks 28 s.
(On the idle machine, two threads ran the first 50 VAE steps in 14 s and a UNet step of batch 64 in 0.24 s,
which puts a `--threads 2` run near 7 minutes; it gives slightly different weights from the shipped ones.)
Results, from the saved folders through load_sd / load_clip:
  (a) VAE on 89 held-out base images: L1 0.021 on the [0, 1] scale, PSNR 29.1 dB; scaling_factor 0.532.
  (b) SD, 50 steps, guidance 2.0, 10 images per base digit: the pretrained CLIP calls 96% (48/50) of them the
      prompted digit; all five rows of the grid are recognisable 5, 6, 7, 8, 9.
  (c) CLIP zero-shot top-1: 96.6% on the held-out base images (5 classes); 13.7% on the target digits 0-4 with
      their own prompts (chance 20%: it never saw them).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datadream_bench.datasets.demo import BASE_DIGITS, TARGET_DIGITS, class_name, digit_images
from datadream_bench.models import tiny

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "datadream_bench" / "models" / "demo_weights"
SEED = 0
HELD_OUT = 0.1  # fraction of each base class kept out of training, for the checks
SHIFT = 2  # pixels of random translation; digits are centred, so a little shift is the natural variation
UNCOND_P = 0.1  # empty-prompt rate for classifier-free guidance


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prompt(digit: int) -> str:
    # DatasetManifest.prompt with the demo's empty prompt word
    return f"a photo of a {class_name(digit)}"


# -- data ------------------------------------------------------------------------------------------------------------


def base_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, train labels, held-out images, held-out labels); images in [0, 1], labels are digits."""
    images, digits = digit_images(BASE_DIGITS)
    rng = np.random.default_rng(SEED)
    train, held = [], []
    for d in BASE_DIGITS:
        idx = rng.permutation(np.flatnonzero(digits == d))
        n_held = round(HELD_OUT * len(idx))
        held.extend(idx[:n_held])
        train.extend(idx[n_held:])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(digits).long()
    train, held = torch.tensor(sorted(train)), torch.tensor(sorted(held))
    return x[train], y[train], x[held], y[held]


def shift(x: torch.Tensor, gen: torch.Generator, fill: float) -> torch.Tensor:
    """Translate each image by up to SHIFT pixels in x and y, filling with the background value."""
    n, _, h, w = x.shape
    padded = F.pad(x, (SHIFT,) * 4, value=fill)
    offsets = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def tokens(tokenizer, texts: list[str]) -> torch.Tensor:
    # padded to the full context, exactly as StableDiffusionPipeline.encode_prompt does
    enc = tokenizer(
        texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=False, return_tensors="pt"
    )
    if enc.input_ids.shape[1] != tokenizer.model_max_length:
        raise ValueError(f"a prompt is longer than the text context of {tokenizer.model_max_length} tokens: {texts}")
    return enc.input_ids


# -- 1. VAE ----------------------------------------------------------------------------------------------------------


def train_vae(vae, x: torch.Tensor, steps: int, batch: int, lr: float = 1e-3, kl_weight: float = 1e-5) -> None:
    gen = torch.Generator().manual_seed(SEED + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    vae.train()
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr, warmup=20)
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        pixels = shift(x[idx], gen, fill=0.0) * 2 - 1
        post = vae.encode(pixels).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        # kl() sums over the latent; the reconstruction terms are per-pixel means
        loss = F.l1_loss(rec, pixels) + F.mse_loss(rec, pixels) + kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"vae  step {step:5d}/{steps}  loss {loss.item():.4f}  {time.time() - t0:6.1f}s")
    vae.eval()


@torch.no_grad()
def encode_all(vae, x: torch.Tensor, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of each image (images in [0, 1])."""
    means, stds = [], []
    for i in range(0, len(x), batch):
        post = vae.encode(x[i : i + batch] * 2 - 1).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def set_scaling_factor(vae, x: torch.Tensor) -> float:
    mean, std = encode_all(vae, x)
    z = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(SEED + 2))
    factor = 1.0 / z.std().item()
    vae.register_to_config(scaling_factor=factor)
    log(f"vae  latent mean {z.mean().item():.3f} std {z.std().item():.3f} -> scaling_factor {factor:.4f}")
    return factor


# -- 2. UNet + text encoder ------------------------------------------------------------------------------------------


def train_unet(
    unet,
    text_encoder,
    tokenizer,
    vae,
    scheduler,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    batch: int,
    lr: float = 1e-3,
    copies: int = 8,
) -> None:
    gen = torch.Generator().manual_seed(SEED + 3)
    # Latents of `copies` shifted versions of each image, encoded once: a pixel shift cannot be done in latent space.
    xs = torch.cat([shift(x, gen, fill=0.0) for _ in range(copies)])
    ys = y.repeat(copies)
    log(f"unet encoding {len(xs)} shifted images")
    lat_mean, lat_std = encode_all(vae, xs)
    scale = vae.config.scaling_factor

    ids = tokens(tokenizer, [prompt(d) for d in BASE_DIGITS] + [""])
    row = {d: i for i, d in enumerate(BASE_DIGITS)}
    uncond_row = len(BASE_DIGITS)
    label_rows = torch.tensor([row[int(d)] for d in ys])

    alphas = scheduler.alphas_cumprod  # the DDPM schedule of SD 2.1-base
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    unet.train()
    text_encoder.train()
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr, warmup=50)
        idx = torch.randint(0, len(xs), (batch,), generator=gen)
        z0 = (lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)) * scale
        rows = label_rows[idx].clone()
        rows[torch.rand(batch, generator=gen) < UNCOND_P] = uncond_row
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        cond = text_encoder(ids[rows])[0]
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"unet step {step:5d}/{steps}  loss {loss.item():.4f}  {time.time() - t0:6.1f}s")
    unet.eval()
    text_encoder.eval()


# -- 3. CLIP ---------------------------------------------------------------------------------------------------------


def clip_pixels(x01: torch.Tensor, processor) -> torch.Tensor:
    """[0, 1] images -> CLIP input, the same normalisation as the saved image processor."""
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    return (x01 - mean) / std


def train_clip(
    model, tokenizer, processor, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, lr: float = 1e-3
) -> None:
    gen = torch.Generator().manual_seed(SEED + 4)
    ids = tokens(tokenizer, [prompt(d) for d in BASE_DIGITS])
    row = {d: i for i, d in enumerate(BASE_DIGITS)}
    label_rows = torch.tensor([row[int(d)] for d in y])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr, warmup=20)
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        pixels = clip_pixels(shift(x[idx], gen, fill=0.0), processor)
        img = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        txt = F.normalize(model.get_text_features(input_ids=ids).pooler_output, dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T  # (batch, classes)
        target = label_rows[idx]
        # Many images share a prompt: image->text is plain cross-entropy; text->image spreads each prompt's
        # target uniformly over the images of its class (classes absent from the batch are skipped).
        onehot = F.one_hot(target, len(BASE_DIGITS)).float().T
        present = onehot.sum(1) > 0
        t2i = -(onehot[present] / onehot[present].sum(1, keepdim=True) * logits.T[present].log_softmax(1)).sum(1)
        loss = (F.cross_entropy(logits, target) + t2i.mean()) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"clip step {step:5d}/{steps}  loss {loss.item():.4f}  {time.time() - t0:6.1f}s")
    model.eval()


# -- saving ----------------------------------------------------------------------------------------------------------


def save(out: Path, sd: dict, clip_model, clip_tokenizer, processor) -> None:
    from diffusers import StableDiffusionPipeline

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    pipe = StableDiffusionPipeline(**sd, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(tmp / "sd", safe_serialization=True)
    clip_model.save_pretrained(tmp / "clip", safe_serialization=True)
    clip_tokenizer.save_pretrained(tmp / "clip")
    processor.save_pretrained(tmp / "clip")
    for sub in ("sd", "clip"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        out.mkdir(parents=True, exist_ok=True)
        (tmp / sub).replace(out / sub)
    tmp.rmdir()


# -- checks ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
# transformers 5: get_*_features return a model output; pooler_output holds the projected embedding
def zero_shot(model, tokenizer, processor, x01: torch.Tensor, digits: torch.Tensor, classes: tuple[int, ...]) -> float:
    """Top-1 of CLIP's zero-shot prediction among `classes` prompts, through the saved image processor."""
    from PIL import Image

    pil = [Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for img in x01]
    pixels = processor(images=pil, return_tensors="pt")["pixel_values"]
    img = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    ids = tokens(tokenizer, [prompt(d) for d in classes])
    txt = F.normalize(model.get_text_features(input_ids=ids).pooler_output, dim=-1)
    pred = torch.tensor(classes)[(img @ txt.T).argmax(1)]
    return (pred == digits).float().mean().item()


@torch.no_grad()
def check(out: Path, held_x: torch.Tensor, held_y: torch.Tensor, grid: Path | None, per_class: int = 10) -> dict:
    from transformers import CLIPImageProcessorPil

    from datadream_bench.models.loading import load_clip, load_sd

    pipe = load_sd(str(out / "sd"))
    clip_model, clip_tok, _ = load_clip(str(out / "clip"))
    clip_model.eval()
    processor = CLIPImageProcessorPil.from_pretrained(out / "clip", local_files_only=True)
    res = {}

    # (a) VAE reconstruction of held-out base images
    pixels = held_x * 2 - 1
    rec = pipe.vae.decode(pipe.vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
    res["vae_l1_held_out"] = (rec - pixels).abs().mean().item() / 2  # on the [0, 1] pixel scale
    res["vae_psnr_held_out"] = (10 * torch.log10(4 / ((rec - pixels) ** 2).mean())).item()

    # (b) text-to-image at the benchmark's settings, judged by the pretrained CLIP
    images, labels = [], []
    for d in BASE_DIGITS:
        gens = [torch.Generator("cpu").manual_seed(1000 * d + i) for i in range(per_class)]
        images += pipe(
            prompt=[prompt(d)] * per_class,
            num_inference_steps=50,
            guidance_scale=2.0,
            generator=gens,
            height=tiny.IMAGE_SIZE,
            width=tiny.IMAGE_SIZE,
        ).images
        labels += [d] * per_class
    gen_x = torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255 for im in images])
    res["sd_generated_clip_top1"] = zero_shot(clip_model, clip_tok, processor, gen_x, torch.tensor(labels), BASE_DIGITS)
    if grid is not None:
        save_grid(images, per_class, grid)
        log(f"grid of generated images (rows: digits {BASE_DIGITS}) -> {grid}")

    # (c) CLIP zero-shot on held-out base images, and on the target digits it never saw
    res["clip_top1_held_out_base"] = zero_shot(clip_model, clip_tok, processor, held_x, held_y, BASE_DIGITS)
    tx, ty = digit_images(TARGET_DIGITS)
    tx = torch.from_numpy(tx).permute(0, 3, 1, 2).float() / 255
    res["clip_top1_target"] = zero_shot(clip_model, clip_tok, processor, tx, torch.from_numpy(ty).long(), TARGET_DIGITS)
    return res


def save_grid(images: list, per_row: int, path: Path, zoom: int = 3) -> None:
    from PIL import Image

    w, h = images[0].size
    sheet = Image.new("RGB", (per_row * w, math.ceil(len(images) / per_row) * h))
    for i, im in enumerate(images):
        sheet.paste(im, ((i % per_row) * w, (i // per_row) * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.NEAREST).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder that receives sd/ and clip/")
    ap.add_argument("--vae-steps", type=int, default=300)
    ap.add_argument("--unet-steps", type=int, default=1200)
    ap.add_argument("--clip-steps", type=int, default=400)
    ap.add_argument("--check-only", action="store_true", help="skip training; measure the weights in --out")
    ap.add_argument("--grid", type=Path, default=None, help="write a PNG of the generated check images here")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the shipped weights used 1)")
    args = ap.parse_args()
    for name in ("vae_steps", "unet_steps", "clip_steps", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")

    torch.set_num_threads(args.threads)
    from datadream_bench.models.loading import quiet_libraries

    quiet_libraries()
    train_x, train_y, held_x, held_y = base_split()
    log(f"base digits {BASE_DIGITS}: {len(train_x)} training images, {len(held_x)} held out")

    if not args.check_only:
        timings = {}
        sd = tiny.tiny_sd_components(SEED)
        t = time.time()
        train_vae(sd["vae"], train_x, args.vae_steps, batch=32)
        set_scaling_factor(sd["vae"], train_x)
        timings["vae"] = time.time() - t
        t = time.time()
        train_unet(
            sd["unet"],
            sd["text_encoder"],
            sd["tokenizer"],
            sd["vae"],
            sd["scheduler"],
            train_x,
            train_y,
            args.unet_steps,
            batch=64,
        )
        timings["unet"] = time.time() - t
        t = time.time()
        clip_model, clip_tok = tiny.tiny_clip(SEED)
        processor = tiny.clip_image_processor(tiny.IMAGE_SIZE)
        train_clip(clip_model, clip_tok, processor, train_x, train_y, args.clip_steps, batch=128)
        timings["clip"] = time.time() - t
        save(args.out, sd, clip_model, clip_tok, processor)
        spent = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        log(f"seconds: {spent}, total {sum(timings.values()):.0f}")
        log(f"saved to {args.out}")

    res = check(args.out, held_x, held_y, args.grid)
    for k, v in res.items():
        log(f"{k}: {v:.4f}")


if __name__ == "__main__":
    main()
