"""GPU benchmark: throughput and MFU of every heavy stage, on the paper's architectures at random weights.

    python benchmarks/gpu.py --out gpu.json          # an H100/H200, sized for under 5 minutes, nothing downloaded
    python benchmarks/gpu.py --tiny --out tiny.json  # the same code on tiny models, CPU, seconds

Measured in one run, on one device:
- peak: a large bf16 matmul, the rate MFU is taken against (the data-sheet peak is reported beside it);
- generation at 512 px, 50 steps, guidance 2.0, batch 10: the engine (LoRA merged per class, fast path) in images/s,
  and the reference-style loop (pipeline reloaded per class, PEFT LoRA unmerged, one image per call) in images/s;
- DataDream's SD LoRA training step (batch 8): samples/s and MFU;
- the CLIP-LoRA classifier step (ViT-B/16, batch 256, 100 class prompts, bf16 autocast): images/s and MFU;
- the classifier's loader (cache index + the paper's augmentation chain on the device): images/s over the training
  step's images/s (above 1: the loader keeps up).
FLOPs come from FlopCounterMode run on the very modules benchmarked (one forward or step each); for the paper
models they are checked against the FLOP model (datadream_bench.perf.flops). `dd-bench plan --calibration` reads
the JSON this writes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, machine, quiet, random_lora, requests, sync  # noqa: E402

SIZES = {
    "paper": dict(classes=2, per_class=10, batch=10, steps=50, ref_images=2, sd_batch=8, sd_steps=10,
                  clip_batch=256, clip_classes=100, clip_steps=10, loader_images=2048, matmul=8192),
    "tiny": dict(classes=2, per_class=2, batch=2, steps=2, ref_images=1, sd_batch=2, sd_steps=1,
                 clip_batch=8, clip_classes=5, clip_steps=1, loader_images=16, matmul=256),
}
GUIDANCE = 2.0


def bench(fn, device, warmup: int = 1, reps: int = 3) -> float:
    """Median seconds of fn after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def count(fn) -> int:
    from datadream_bench.perf.flops import count as flop_count

    return flop_count(fn)


def matmul_peak(device, dtype, n: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 20 if device.type == "cuda" else 3
    s = bench(lambda: [a @ b for _ in range(reps)], device, warmup=1, reps=3)
    return 2 * n ** 3 * reps / s / 1e12


def datasheet_peak(gpu_name: str) -> float | None:
    from datadream_bench.perf.costs import PEAK_TFLOPS

    name = gpu_name.lower()
    for chip in ("h200", "a100", "l40s"):
        if chip in name:
            return PEAK_TFLOPS[chip]
    if "h100" in name:
        return PEAK_TFLOPS["h100-pcie" if "pcie" in name else "h100-sxm"]
    return None


# ---- models ----

def build_pipeline(tiny: bool, device, dtype):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    from datadream_bench.perf import architectures as arch

    if tiny:
        from datadream_bench.models.tiny import tiny_sd_components

        parts = tiny_sd_components(0)
    else:
        torch.manual_seed(0)
        with torch.device(device):  # random init on the GPU: seconds instead of minutes on the CPU
            parts = dict(unet=UNet2DConditionModel(**arch.SD21_UNET), vae=AutoencoderKL(**arch.SD21_VAE),
                         text_encoder=arch.sd_text_encoder(device))
        parts.update(tokenizer=arch.byte_level_tokenizer(), scheduler=arch.sd_scheduler())
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


def image_flops(pipe, device, dtype, steps: int) -> tuple[int, dict]:
    """FLOPs of one guided image, from one UNet, VAE-decode and text-encoder forward of these very modules."""
    unet, size = pipe.unet, pipe.unet.config.sample_size
    x = torch.zeros(1, 4, size, size, device=device, dtype=dtype)
    ids = torch.zeros(1, pipe.tokenizer.model_max_length, dtype=torch.long, device=device)
    with torch.no_grad():
        text = count(lambda: pipe.text_encoder(ids))
        c = pipe.text_encoder(ids)[0]
        u = count(lambda: unet(x, torch.tensor([500], device=device), c))
        v = count(lambda: pipe.vae.decode(x / pipe.vae.config.scaling_factor))
    parts = {"unet_forward": u, "vae_decode": v, "text_forward": text}
    return steps * 2 * u + v + 2 * text, parts


class TextToImage:
    name = "bench-text"

    def __init__(self, steps: int):
        self.steps = steps

    def sample(self, ctx, sampler, batch):
        return sampler.text_to_image(batch, num_inference_steps=self.steps, guidance_scale=GUIDANCE)


# ---- stages ----

def bench_generation(pipe, device, dtype, s: dict, work: Path, peak: float) -> dict:
    from diffusers import StableDiffusionPipeline

    from datadream_bench.engine.fast import prepare
    from datadream_bench.engine.generate import generate
    from datadream_bench.engine.lora import unmerged_lora
    from datadream_bench.engine.sampler import Sampler

    fast = prepare(pipe)
    flop_per_image, parts = image_flops(pipe, device, dtype, s["steps"])
    adapters = {f"class-{c}": random_lora(pipe, rank=16, seed=c) for c in range(s["classes"])}
    sampler = Sampler(pipe, str(device), dtype)
    warm = requests(1, s["batch"])
    generate(TextToImage(s["steps"]), sampler, warm, work / "warmup", batch_size=s["batch"],
             load_adapter=adapters.__getitem__)
    reqs = requests(s["classes"], s["per_class"])
    sync(device)
    t = time.perf_counter()
    report = generate(TextToImage(s["steps"]), sampler, reqs, work / "engine", batch_size=s["batch"],
                      load_adapter=adapters.__getitem__)
    sync(device)
    engine_s = time.perf_counter() - t
    engine_ips = len(reqs) / engine_s

    # The reference-style loop, from a saved copy: reload per class, PEFT layers, one image per call.
    folder = work / "saved-sd"
    pipe.save_pretrained(folder, safe_serialization=True)
    ref_n, reload_s = 0, []
    sync(device)
    t = time.perf_counter()
    for c in range(s["classes"]):
        r0 = time.perf_counter()
        ref = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True, safety_checker=None,
                                                      feature_extractor=None, requires_safety_checker=False)
        ref.set_progress_bar_config(disable=True)
        ref.to(device)
        reload_s.append(time.perf_counter() - r0)
        with unmerged_lora({"unet": ref.unet, "text_encoder": ref.text_encoder}, adapters[f"class-{c}"]):
            for r in [r for r in reqs if r.label == c][: s["ref_images"]]:
                ref(prompt=[r.prompt], num_inference_steps=s["steps"], guidance_scale=GUIDANCE,
                    generator=[torch.Generator("cpu").manual_seed(r.seed)])
                ref_n += 1
        del ref
    sync(device)
    ref_s = time.perf_counter() - t
    ref_ips = ref_n / ref_s
    achieved = flop_per_image * engine_ips / 1e12
    return {"images": len(reqs), "steps": s["steps"], "guidance": GUIDANCE, "batch": s["batch"],
            "images_per_s": engine_ips, "seconds": engine_s, "adapter_seconds": report.adapter_seconds,
            "flops_per_image": flop_per_image, "flops_parts": parts, "achieved_tflops": achieved,
            "mfu": achieved / peak, "fast_path": fast.as_dict(),
            "reference": {"images": ref_n, "seconds": ref_s, "images_per_s": ref_ips,
                          "reload_s_per_class": statistics.median(reload_s)},
            "speedup_vs_reference": engine_ips / ref_ips}


def bench_sd_lora(pipe, device, s: dict, peak: float) -> dict:
    from datadream_bench.api import Example
    from dd_bench_datadream.config import DataDreamConfig
    from dd_bench_datadream.method import finetuner
    from PIL import Image

    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    g = torch.Generator().manual_seed(0)
    images = [Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy())
              for _ in range(s["sd_batch"])]
    examples = [Example(img, "a photo of a digit seven") for img in images]
    config = DataDreamConfig(train_batch_size=s["sd_batch"], epochs=10_000, warmup_steps=0)
    batch = list(range(s["sd_batch"]))
    with finetuner(pipe, examples, config, seed=0) as trainer:
        flop_step = count(lambda: trainer.step(batch))
        step_s = bench(lambda: trainer.step(batch), device, warmup=1, reps=s["sd_steps"])
    achieved = flop_step / step_s / 1e12
    return {"batch": s["sd_batch"], "step_s": step_s, "samples_per_s": s["sd_batch"] / step_s,
            "flops_per_step": flop_step, "achieved_tflops": achieved, "mfu": achieved / peak}


def build_clip(tiny: bool, device):
    from datadream_bench.perf import architectures as arch

    if tiny:
        from datadream_bench.models.tiny import tiny_clip

        model, _ = tiny_clip(0)
        return model.to(device)
    torch.manual_seed(0)
    return arch.clip_vit_b16(device)


def bench_clip(tiny: bool, device, s: dict, peak: float) -> tuple[dict, float, int]:
    import torch.nn.functional as F

    from datadream_bench.classifier import model as clip
    from datadream_bench.classifier.clip_lora import train_step

    model = build_clip(tiny, device)
    torch.manual_seed(0)
    clip.add_lora(model, 16, 32, 0.1)
    size = model.config.vision_config.image_size
    context = model.config.text_config.max_position_embeddings
    tokens = min(15, context)  # the paper's prompts are 10-20 BPE tokens, padded to the longest
    eos = model.config.text_config.eos_token_id
    ids = torch.randint(0, min(eos, 49000), (s["clip_classes"], tokens), device=device)
    ids[:, -1] = eos
    text = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    x = torch.randn(s["clip_batch"], 3, size, size, device=device)
    y = torch.randint(0, s["clip_classes"], (s["clip_batch"],), device=device)
    amp, amp_dtype = clip.autocast(str(device), "auto")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    model.train()

    targets = F.one_hot(y, s["clip_classes"]).float()
    real = torch.zeros(len(y), dtype=torch.bool)

    def step():  # the classifier's own training step, on synthetic rows only
        train_step(model, opt, scaler, amp, text, x, targets, real, None)

    flop_step = count(step)
    step_s = bench(step, device, warmup=2, reps=s["clip_steps"])
    achieved = flop_step / step_s / 1e12
    train_ips = s["clip_batch"] / step_s
    return ({"batch": s["clip_batch"], "classes": s["clip_classes"], "text_tokens": tokens, "step_s": step_s,
             "images_per_s": train_ips, "flops_per_step": flop_step, "achieved_tflops": achieved,
             "mfu": achieved / peak, "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32"},
            train_ips, size)


def bench_loader(device, s: dict, size: int, train_ips: float) -> dict:
    """The classifier's batch path: index the decoded cache, move to the device, the paper's augmentation, MixUp /
    CutMix. Decoding happens once before training and is not part of a step."""
    import numpy as np

    from datadream_bench.classifier import augment, data

    cache = round(size * 8 / 7)
    g = torch.Generator().manual_seed(0)
    n = s["loader_images"]
    images = torch.randint(0, 256, (n, 3, cache, cache), generator=g, dtype=torch.uint8)
    if device.type == "cuda":
        images = images.pin_memory()
    ts = data.TrainSet(images, torch.arange(n), torch.randint(0, s["clip_classes"], (n,), generator=g),
                       torch.zeros(n, dtype=torch.bool))
    order = data.epoch_order(n, 0)
    batches = data.batch_indices(order, s["clip_batch"])
    rng = np.random.default_rng(0)

    def one(i):
        imgs, labels, real = ts.batch(batches[i % len(batches)])
        x = augment.train_transform(imgs.to(device, non_blocking=True), size, torch.Generator().manual_seed(i))
        return augment.mix(x, labels, real, s["clip_classes"], rng, 0.2, 1.0)

    counter = iter(range(10 ** 9))
    step_s = bench(lambda: one(next(counter)), device, warmup=2, reps=5)
    ips = s["clip_batch"] / step_s
    return {"images_per_s": ips, "batch": s["clip_batch"], "over_train_step": ips / train_ips}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models (runs on CPU in seconds): the mechanics")
    parser.add_argument("--out", type=Path, default=Path("gpu-benchmark.json"))
    args = parser.parse_args(argv)
    quiet()
    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA device; run with --tiny to exercise the script on the CPU", file=sys.stderr)
        raise SystemExit(2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from datadream_bench.engine.fast import gpu_dtype

    dtype = gpu_dtype() if device.type == "cuda" else torch.float32
    s = SIZES["tiny" if args.tiny else "paper"]
    start = time.perf_counter()
    peak = matmul_peak(device, dtype, s["matmul"])
    record = {"tiny": args.tiny, "device": str(device), "dtype": str(dtype).replace("torch.", ""),
              "machine": machine(), "commit": commit(), "sizes": s,
              "peak": {"measured_matmul_tflops": peak}, "results": {}}
    sheet = datasheet_peak(record["machine"].get("gpu", ""))
    record["peak"]["datasheet_dense_bf16_tflops"] = sheet
    results = record["results"]
    with tempfile.TemporaryDirectory() as tmp:
        pipe = build_pipeline(args.tiny, device, dtype)
        results["generation"] = bench_generation(pipe, device, dtype, s, Path(tmp), peak)
        if not args.tiny:
            from datadream_bench.perf import costs

            model_flops = costs.image_flops(costs.Generation(steps=s["steps"], guidance_scale=GUIDANCE))
            results["generation"]["flop_model_per_image"] = model_flops
        results["sd_lora_train"] = bench_sd_lora(pipe, device, s, peak)
        del pipe
        if device.type == "cuda":
            torch.cuda.empty_cache()
        results["clip_lora_train"], train_ips, size = bench_clip(args.tiny, device, s, peak)
        results["loader"] = bench_loader(device, s, size, train_ips)
    record["seconds"] = time.perf_counter() - start
    args.out.write_text(json.dumps(record, indent=1))
    g, t, c, lo = (results[k] for k in ("generation", "sd_lora_train", "clip_lora_train", "loader"))
    print(f"peak ({record['dtype']} matmul, measured): {peak:.3g} TFLOP/s"
          + (f"; data sheet {sheet:g}" if sheet else ""))
    print(f"generation: {g['images_per_s']:.3f} images/s, {g['achieved_tflops']:.3g} TFLOP/s, MFU {g['mfu']:.1%}; "
          f"reference loop {g['reference']['images_per_s']:.3f} images/s ({g['speedup_vs_reference']:.2f}x)")
    print(f"SD LoRA training: {t['samples_per_s']:.2f} samples/s, MFU {t['mfu']:.1%}")
    print(f"CLIP-LoRA classifier: {c['images_per_s']:.0f} images/s, MFU {c['mfu']:.1%}")
    print(f"loader: {lo['images_per_s']:.0f} images/s = {lo['over_train_step']:.1f}x the training step")
    print(f"{record['seconds']:.0f} s; results in {args.out}", file=sys.stderr)
    return record


if __name__ == "__main__":
    main()
