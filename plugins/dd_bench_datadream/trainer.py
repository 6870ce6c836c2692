"""Stable Diffusion LoRA fine-tuning on a few images: the diffusers DreamBooth-LoRA recipe, no prior preservation.

Fast by construction, without changing what is learned:
- Each image is resized once (shorter side to the model resolution). When that makes it square, its random crop is
  the whole image, so its VAE posterior (mean, std) is computed once and cached; a fresh latent is still sampled from
  it at every step, as the recipe does. A non-square image has many crops, and a crop taken in latent space would not
  be the latent of the cropped image (the encoder sees across the crop edge), so it is encoded at every step.
- When the text encoder is not trained, each distinct prompt is encoded once.

All randomness (LoRA init, epoch order, crops, posterior samples, noise, timesteps) comes from one seed, drawn on the
CPU so the same seed gives the same LoRA on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from datadream_bench import api

ADAPTER = "datadream"


@dataclass(frozen=True)
class Example:
    image: str | Path | Image.Image  # a file (decoded when training starts) or an RGB image
    prompt: str


def load_example(example: Example) -> Image.Image:
    image = example.image
    if not isinstance(image, (str, Path)):
        return image.convert("RGB")
    try:
        return api.load_rgb(image)
    except ValueError as e:  # the loader's message names the file and what is wrong with it
        raise api.UsageError(f"cannot train on a few-shot image: {e}") from None


def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return image.resize(new, Image.BILINEAR) if new != image.size else image


def to_pixels(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float in [-1, 1]."""
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class LoraTrainer:
    """LoRA layers injected into a pipeline's UNet (and text encoder), trained on examples, then taken out.

    Use it as a context manager: on exit every LoRA layer is removed and whatever peft changed on the modules
    (requires_grad flags, train/eval modes, its peft_config attribute) is put back, so the pipeline is again the
    exact base it was, even after an error.
    """

    def __init__(self, pipe, examples: list[Example], config, seed: int):
        if not examples:
            raise api.UsageError("LoRA fine-tuning needs at least one image")
        self.pipe, self.examples, self.config = pipe, examples, config
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
            raise api.UsageError(
                f"LoRA fine-tuning supports epsilon and v_prediction models, not {self.prediction_type!r}"
            )
        self.steps_per_epoch = math.ceil(len(examples) / config.train_batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.prompts = sorted({e.prompt for e in examples})
        api.check_prompts_fit(pipe.tokenizer, sorted(set(self.prompts)), "DataDream fine-tuning prompts")
        row = {p: i for i, p in enumerate(self.prompts)}
        self.prompt_index = torch.tensor([row[e.prompt] for e in examples])
        self.components = {"unet": self.unet}
        if config.train_text_encoder:
            self.components["text_encoder"] = self.text_encoder
        self.step_count = 0

    # -- setup and teardown -------------------------------------------------------------------------------------

    def __enter__(self) -> LoraTrainer:
        self._saved = {name: _snapshot(m) for name, m in (("unet", self.unet), ("text_encoder", self.text_encoder))}
        try:
            self._prepare_inputs()
            self._inject()
            self.params = [p for m in self.components.values() for n, p in m.named_parameters() if "lora_" in n]
            c = self.config
            self.optimizer = torch.optim.AdamW(
                self.params,
                lr=c.lr,
                betas=(c.adam_beta1, c.adam_beta2),
                weight_decay=c.weight_decay,
                eps=c.adam_epsilon,
                foreach=True,  # one update for all factors: a per-tensor loop costs more than the math here
            )
            from diffusers.optimization import get_cosine_schedule_with_warmup

            self.lr_schedule = get_cosine_schedule_with_warmup(self.optimizer, c.warmup_steps, self.total_steps)
            # fp16 gradients through a half-precision base underflow without loss scaling; bf16 and fp32 need none.
            self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _inject(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        targets = api.sd_lora_targets()
        # peft draws the Gaussian init of lora_A from the global CPU generator: fork it, seeded from this run.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(api.seed_from("lora-init", self.seed))
            for name, module in self.components.items():
                config = LoraConfig(
                    r=self.config.rank,
                    lora_alpha=self.config.alpha,
                    init_lora_weights="gaussian",
                    target_modules=list(targets[name]),
                )
                inject_adapter_in_model(config, module, adapter_name=ADAPTER)
        for module in self.components.values():
            module.train()
            for n, p in module.named_parameters():
                if "lora_" in n:
                    # peft casts the factors to the base layer's dtype; they train in fp32 whatever the base runs in.
                    p.data = p.data.float()
                    p.requires_grad_(True)

    def _restore(self) -> None:
        for name, module in (("unet", self.unet), ("text_encoder", self.text_encoder)):
            api.remove_lora_layers(module)
            _put_back(module, self._saved[name])
        self.params, self.optimizer = [], None

    @torch.no_grad()
    def _prepare_inputs(self) -> None:
        # Only what a step needs is kept: the posterior of a square image, the resized copy of any other.
        self.resized: dict[int, Image.Image] = {}
        self.moments: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        square: list[tuple[int, torch.Tensor]] = []

        def encode_square() -> None:
            mean, std = self._encode(torch.stack([pixels for _, pixels in square]))
            for j, (i, _) in enumerate(square):
                self.moments[i] = (mean[j], std[j])
            square.clear()

        for i, example in enumerate(self.examples):
            image = resize_shorter(load_example(example), self.size)
            if image.size == (self.size, self.size):
                square.append((i, to_pixels(image)))
                if len(square) == 16:
                    encode_square()
            else:
                self.resized[i] = image
        if square:
            encode_square()
        self.token_ids = self.pipe.tokenizer(
            self.prompts, padding="max_length", max_length=self.pipe.tokenizer.model_max_length, return_tensors="pt"
        ).input_ids.to(self.device)
        self.frozen_text = None
        if not self.config.train_text_encoder:
            self.frozen_text = self.text_encoder(self.token_ids)[0]

    @torch.no_grad()
    def _encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        return posterior.mean.float(), posterior.std.float()

    # -- one step -----------------------------------------------------------------------------------------------

    def latents(self, indices: list[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents of the examples, a random crop and a fresh posterior sample each call."""
        g = generator or self.generator
        means, stds = [], []
        for i in indices:
            img = self.resized.get(i)
            w, h = img.size if img is not None else (self.size, self.size)
            top = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
            left = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
            if i in self.moments:
                mean, std = self.moments[i]
            else:
                crop = img.crop((left, top, left + self.size, top + self.size))
                mean, std = (t[0] for t in self._encode(to_pixels(crop)[None]))
            means.append(mean)
            stds.append(std)
        mean, std = torch.stack(means), torch.stack(stds)
        eps = torch.randn(mean.shape, generator=g).to(self.device)
        z = mean + std * eps
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return (z - shift) * self.vae.config.scaling_factor

    def text_states(self, indices: list[int]) -> torch.Tensor:
        rows = self.prompt_index[indices]
        if self.frozen_text is not None:
            return self.frozen_text[rows.to(self.device)]
        # Each distinct prompt of the batch goes through the encoder once (a class-wise batch has one).
        unique, inverse = torch.unique(rows, return_inverse=True)
        return self.text_encoder(self.token_ids[unique.to(self.device)])[0][inverse.to(self.device)]

    def loss(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, indices: list[int]):
        """The diffusion loss of the examples at given latents, noise and timesteps (MSE to noise or v)."""
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = self.unet(noisy.to(self.dtype), timesteps, self.text_states(indices).to(self.dtype)).sample
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
        loss = self.loss(latents, noise, t, indices)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.lr_schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return float(loss.detach())

    def train(self, steps: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[float]:
        """Run the schedule's steps (or the first `steps` of them): shuffled epochs, batches of train_batch_size."""
        total = self.total_steps if steps is None else min(steps, self.total_steps)
        bs, losses = self.config.train_batch_size, []
        while self.step_count < total:
            order = torch.randperm(len(self.examples), generator=self.generator).tolist()
            for start in range(0, len(order), bs):
                if self.step_count >= total:
                    break
                losses.append(self.step(order[start : start + bs]))
                if progress is not None:
                    progress(self.step_count, total)
        return losses

    def weights(self) -> api.LoraWeights:
        tensors = {}
        for name, module in self.components.items():
            tensors.update(api.lora_from_peft(name, module, adapter_name=ADAPTER))
        tensors = {k: v.to("cpu", torch.float32) for k, v in tensors.items()}
        broken = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
        if broken:
            raise api.UsageError(
                f"LoRA fine-tuning diverged after {self.step_count} steps ({len(broken)} factors hold inf/nan, e.g. "
                f"{broken[0]}): lower lr (now {self.config.lr}) or raise warmup_steps (now {self.config.warmup_steps})"
            )
        return api.LoraWeights(tensors, rank=self.config.rank, alpha=self.config.alpha)


def _snapshot(module: torch.nn.Module) -> dict:
    return {
        "attrs": set(module.__dict__),
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "training": {n: m.training for n, m in module.named_modules()},
        # peft adds its adapter to a peft_config dict already on the module (left by other PEFT users) in place.
        "peft_config": dict(module.peft_config) if isinstance(getattr(module, "peft_config", None), dict) else None,
    }


def _put_back(module: torch.nn.Module, saved: dict) -> None:
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
