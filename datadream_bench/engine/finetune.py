"""Fine-tuning Stable Diffusion on a few images with the denoising loss: LoRA layers, learned tokens, or both.

The recipe of the diffusers DreamBooth-LoRA and textual-inversion examples (DDPM forward process of the model's noise
schedule, uniform timesteps, MSE to the noise or to v), shared by every method that adapts by training: DataDream
(class- or dataset-wise LoRA), LoFT (one LoRA per real image), DA-Fusion (one token per class). What differs between
them is a setting here: which parameters train, how images are cropped and flipped, the prompts, the schedule.

Fast by construction, without changing what is learned:
- Each image is brought to the model resolution once. When its view is fixed (a square image, a center crop, a
  resize), its VAE posterior (mean, std) is computed once and cached (both orientations when flips are on); a fresh
  latent is still sampled from it at every step, as the recipe does. A random crop of a non-square image is encoded
  at every step (a crop taken in latent space would not be the latent of the cropped image).
- When no text-side parameter trains, each distinct prompt is encoded once.

All randomness (LoRA init, epoch order, crops, flips, prompt choice, posterior samples, noise, timesteps) comes from
one seed, drawn on the CPU, so the same seed gives the same weights on every device. The shared pipeline is given
back exactly as it was (engine.training.restored, engine.tokens.learned_tokens), even after an error.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..contract import LoraWeights
from ..datasets.images import load_rgb
from ..errors import UsageError
from ..fingerprint import seed_from
from .lora import lora_from_peft
from .prompts import check_prompts_fit
from .tokens import learned_tokens
from .training import restored

ADAPTER = "dd_bench_finetune"


@dataclass(frozen=True)
class Example:
    image: str | Path | Image.Image  # a file (decoded when training starts) or an RGB image
    prompt: str | tuple[str, ...]  # a tuple: one of them is drawn for each step (textual inversion's templates)


@dataclass(frozen=True)
class Schedule:
    """The optimisation: AdamW, linear warm-up, then cosine decay to zero or a constant rate.

    steps: total optimiser steps; None: epochs x ceil(examples / batch_size), each epoch a fresh shuffle.
    max_grad_norm: clip gradients to this global norm; None: no clipping.
    """

    lr: float
    epochs: int = 1
    batch_size: int = 1
    steps: int | None = None
    warmup_steps: int = 0
    decay: Literal["cosine", "constant"] = "cosine"
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0


@dataclass(frozen=True)
class Views:
    """How a training image becomes a model-sized square: "random" crop or "center" crop after resizing the shorter
    side, or "resize" the whole image to the square (aspect not kept); then a horizontal flip with probability flip."""

    crop: Literal["random", "center", "resize"] = "random"
    flip: float = 0.0
    resample: Literal["bilinear", "bicubic"] = "bilinear"


@dataclass(frozen=True)
class LoraSpec:
    """LoRA layers to train: rank, alpha and the module names they wrap in each component ("unet",
    "text_encoder"), Gaussian init of A (std 1 / rank) and B = 0, as the recipe does."""

    rank: int
    alpha: float
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)


RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def load_example(example: Example) -> Image.Image:
    image = example.image
    if not isinstance(image, (str, Path)):
        return image.convert("RGB")
    try:
        return load_rgb(image)
    except ValueError as e:  # the loader's message names the file and what is wrong with it
        raise UsageError(f"cannot train on a few-shot image: {e}") from None


def resize_shorter(image: Image.Image, size: int, resample=Image.BILINEAR) -> Image.Image:
    w, h = image.size
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return image.resize(new, resample) if new != image.size else image


def to_pixels(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float in [-1, 1]."""
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class Finetuner:
    """Trains LoRA layers and/or learned tokens on a pipeline's UNet and text encoder, then takes them out.

    Use it as a context manager: within it the trainable parts are in place and train() runs the schedule;
    lora_weights() and token_embeddings() read what was learned. On exit every LoRA layer is removed, the learned
    rows are taken out of the text encoder, and whatever training changed on the modules is put back.
    """

    def __init__(self, pipe, examples: list[Example], schedule: Schedule, *, seed: int, views: Views = Views(),
                 lora: LoraSpec | None = None, tokens: dict[str, torch.Tensor] | None = None):
        if not examples:
            raise UsageError("fine-tuning needs at least one image")
        if lora is None and not tokens:
            raise UsageError("fine-tuning needs something to train: LoRA layers or learned tokens")
        self.pipe, self.examples, self.schedule, self.views = pipe, examples, schedule, views
        self.lora, self.init_tokens = lora, dict(tokens or {})
        self.unet, self.vae, self.text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        self.device, self.dtype = self.unet.device, self.unet.dtype
        self.size = self.unet.config.sample_size * pipe.vae_scale_factor
        self.seed = seed
        self.generator = torch.Generator("cpu").manual_seed(seed)
        from diffusers import DDPMScheduler

        # Training always uses the DDPM forward process of the model's noise schedule, whatever it samples with.
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise UsageError(f"fine-tuning supports epsilon and v_prediction models, not {self.prediction_type!r}")
        self.steps_per_epoch = math.ceil(len(examples) / schedule.batch_size)
        self.total_steps = schedule.steps if schedule.steps is not None else schedule.epochs * self.steps_per_epoch
        self.choices = [e.prompt if isinstance(e.prompt, tuple) else (e.prompt,) for e in examples]
        self.prompts = sorted({p for c in self.choices for p in c})
        if not self.init_tokens:
            check_prompts_fit(pipe.tokenizer, self.prompts, "fine-tuning prompts")
        self.components = {name: getattr(self, name) for name in (lora.targets if lora else {})}
        unknown = set(self.components) - {"unet", "text_encoder"}
        if unknown:
            raise UsageError(f"LoRA targets {sorted(unknown)}; fine-tuning trains the unet and text_encoder only")
        self.text_trains = "text_encoder" in self.components or bool(self.init_tokens)
        self.step_count = 0
        self._stack: ExitStack | None = None

    # -- setup and teardown -------------------------------------------------------------------------------------

    def __enter__(self) -> Finetuner:
        self._stack = ExitStack()
        try:
            self._stack.enter_context(restored(self.unet, self.text_encoder, self.vae))
            self.vocab, self.token_rows = None, None
            if self.init_tokens:
                self.vocab, self.token_rows = self._stack.enter_context(
                    learned_tokens(self.text_encoder, self.pipe.tokenizer, self.init_tokens, trainable=True))
                check_prompts_fit(self.vocab.tokenizer, self.prompts, "fine-tuning prompts")
            self._prepare_inputs()
            self._inject()
            self.params = [p for m in self.components.values() for n, p in m.named_parameters() if "lora_" in n]
            if self.token_rows is not None:
                self.params.append(self.token_rows)
            s = self.schedule
            self.optimizer = torch.optim.AdamW(
                self.params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay, eps=s.eps,
                foreach=True,  # one update for all factors: a per-tensor loop costs more than the math here
            )
            from diffusers.optimization import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

            if s.decay == "cosine":
                self.lr_schedule = get_cosine_schedule_with_warmup(self.optimizer, s.warmup_steps, self.total_steps)
            else:
                self.lr_schedule = get_constant_schedule_with_warmup(self.optimizer, s.warmup_steps)
            # fp16 gradients through a half-precision base underflow without loss scaling; bf16 and fp32 need none.
            self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        self.params, self.optimizer = [], None
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _inject(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        # Only what trains takes gradients; the base stays frozen whatever its flags were.
        for module in (self.unet, self.vae, self.text_encoder):
            module.requires_grad_(False)
        if self.lora is not None:
            # peft draws the Gaussian init of lora_A from the global CPU generator: fork it, seeded from this run.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed_from("lora-init", self.seed))
                for name, module in self.components.items():
                    config = LoraConfig(r=self.lora.rank, lora_alpha=self.lora.alpha, init_lora_weights="gaussian",
                                        target_modules=list(self.lora.targets[name]))
                    inject_adapter_in_model(config, module, adapter_name=ADAPTER)
        for module in self.components.values():
            module.train()
            for n, p in module.named_parameters():
                if "lora_" in n:
                    # peft casts the factors to the base layer's dtype; they train in fp32 whatever the base runs in.
                    p.data = p.data.float()
                    p.requires_grad_(True)
        if self.token_rows is not None:
            self.token_rows.requires_grad_(True)  # the learned rows live in the text encoder, frozen just above
            self.text_encoder.train()

    @torch.no_grad()
    def _prepare_inputs(self) -> None:
        # Only what a step needs is kept: the posterior of each fixed view, the resized copy of any other image.
        self.resized: dict[int, Image.Image] = {}
        self.moments: dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor]] = {}
        pending: list[tuple[tuple[int, bool], torch.Tensor]] = []

        def encode_pending() -> None:
            mean, std = self._encode(torch.stack([pixels for _, pixels in pending]))
            for j, (key, _) in enumerate(pending):
                self.moments[key] = (mean[j], std[j])
            pending.clear()

        resample = RESAMPLE[self.views.resample]
        flips = (False, True) if self.views.flip > 0 else (False,)
        for i, example in enumerate(self.examples):
            image = load_example(example)
            if self.views.crop == "resize":
                image = image.resize((self.size, self.size), resample)
            else:
                image = resize_shorter(image, self.size, resample)
                if self.views.crop == "center" and image.size != (self.size, self.size):
                    w, h = image.size
                    left, top = (w - self.size) // 2, (h - self.size) // 2
                    image = image.crop((left, top, left + self.size, top + self.size))
            if image.size != (self.size, self.size):
                self.resized[i] = image
                continue
            for flipped in flips:
                view = image.transpose(Image.FLIP_LEFT_RIGHT) if flipped else image
                pending.append(((i, flipped), to_pixels(view)))
                if len(pending) == 16:
                    encode_pending()
        if pending:
            encode_pending()
        tokenize = self.vocab if self.vocab is not None else self._tokenize
        self.token_ids = tokenize(self.prompts).to(self.device)
        self.prompt_row = {p: i for i, p in enumerate(self.prompts)}
        self.frozen_text = None
        if not self.text_trains:
            self.frozen_text = self.text_encoder(self.token_ids)[0]

    def _tokenize(self, prompts: list[str]) -> torch.Tensor:
        tok = self.pipe.tokenizer
        return tok(prompts, padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids

    @torch.no_grad()
    def _encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        return posterior.mean.float(), posterior.std.float()

    # -- one step -----------------------------------------------------------------------------------------------

    def latents(self, indices: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents of the examples: a fresh view (crop, flip) and a fresh posterior sample each call."""
        g = generator or self.generator
        means, stds = [], []
        for i in indices:
            img = self.resized.get(i)
            w, h = img.size if img is not None else (self.size, self.size)
            top, left = 0, 0
            if self.views.crop == "random":
                top = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
                left = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
            flipped = self.views.flip > 0 and float(torch.rand((), generator=g)) < self.views.flip
            if (i, flipped) in self.moments:
                mean, std = self.moments[(i, flipped)]
            else:
                view = img.crop((left, top, left + self.size, top + self.size))
                if flipped:
                    view = view.transpose(Image.FLIP_LEFT_RIGHT)
                mean, std = (t[0] for t in self._encode(to_pixels(view)[None]))
            means.append(mean)
            stds.append(std)
        mean, std = torch.stack(means), torch.stack(stds)
        eps = torch.randn(mean.shape, generator=g).to(self.device)
        z = mean + std * eps
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return (z - shift) * self.vae.config.scaling_factor

    def prompt_rows(self, indices: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """The prompt of each example for one step: its own, or one of its choices drawn at random."""
        g = generator or self.generator
        rows = []
        for i in indices:
            choices = self.choices[i]
            pick = int(torch.randint(0, len(choices), (1,), generator=g)) if len(choices) > 1 else 0
            rows.append(self.prompt_row[choices[pick]])
        return torch.tensor(rows)

    def text_states(self, rows: torch.Tensor) -> torch.Tensor:
        if self.frozen_text is not None:
            return self.frozen_text[rows.to(self.device)]
        # Each distinct prompt of the batch goes through the encoder once (a class-wise batch has one).
        unique, inverse = torch.unique(rows, return_inverse=True)
        return self.text_encoder(self.token_ids[unique.to(self.device)])[0][inverse.to(self.device)]

    def loss(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, rows: torch.Tensor):
        """The diffusion loss at given latents, noise, timesteps and prompt rows (MSE to noise or v)."""
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = self.unet(noisy.to(self.dtype), timesteps, self.text_states(rows).to(self.dtype)).sample
        if self.prediction_type == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(pred.float(), target.float())

    def step(self, indices: list[int]) -> float:
        g = self.generator
        latents = self.latents(indices)
        noise = torch.randn(latents.shape, generator=g).to(self.device)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (len(indices),), generator=g)
        loss = self.loss(latents, noise, t, self.prompt_rows(indices))
        self.scaler.scale(loss).backward()
        if self.schedule.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.schedule.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.lr_schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return float(loss.detach())

    def train(self, steps: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[float]:
        """Run the schedule's steps (or the first `steps` of them): shuffled epochs, batches of batch_size."""
        total = self.total_steps if steps is None else min(steps, self.total_steps)
        bs, losses = self.schedule.batch_size, []
        while self.step_count < total:
            order = torch.randperm(len(self.examples), generator=self.generator).tolist()
            for start in range(0, len(order), bs):
                if self.step_count >= total:
                    break
                losses.append(self.step(order[start : start + bs]))
                if progress is not None:
                    progress(self.step_count, total)
        return losses

    # -- what was learned ---------------------------------------------------------------------------------------

    def lora_weights(self) -> LoraWeights:
        if self.lora is None:
            raise RuntimeError("this fine-tuning trains no LoRA layers")
        tensors = {}
        for name, module in self.components.items():
            tensors.update(lora_from_peft(name, module, adapter_name=ADAPTER))
        tensors = {k: v.to("cpu", torch.float32) for k, v in tensors.items()}
        self._check_finite(tensors)
        return LoraWeights(tensors, rank=self.lora.rank, alpha=self.lora.alpha)

    def token_embeddings(self) -> dict[str, torch.Tensor]:
        if self.token_rows is None:
            raise RuntimeError("this fine-tuning learns no tokens")
        rows = self.token_rows.detach().to("cpu", torch.float32)
        tokens = {name: rows[i].clone() for i, name in enumerate(self.init_tokens)}
        self._check_finite(tokens)
        return tokens

    def _check_finite(self, tensors: dict[str, torch.Tensor]) -> None:
        broken = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
        if broken:
            raise UsageError(
                f"fine-tuning diverged after {self.step_count} steps ({len(broken)} tensors hold inf/nan, e.g. "
                f"{broken[0]}): lower lr (now {self.schedule.lr}) or raise warmup_steps (now "
                f"{self.schedule.warmup_steps})"
            )


def losses_summary(losses: list[float]) -> dict:
    """The loss is noisy step to step: steps run and the mean of its first and last tenth."""
    tail = max(1, len(losses) // 10)
    return {"steps": len(losses), "loss_first_tenth": sum(losses[:tail]) / tail,
            "loss_last_tenth": sum(losses[-tail:]) / tail}
