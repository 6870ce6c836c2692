"""CPU benchmarks on tiny models: each line a ratio of two ways of doing the same work, both measured in this run.

    python benchmarks/cpu.py            # about 5-10 minutes on 2 busy cores
    python benchmarks/cpu.py --fast     # CI mode, under 2 minutes (also DD_BENCH_FAST=1)
    python benchmarks/cpu.py --out cpu.json

1. generation: the engine (pipeline loaded once, LoRA merged per class, batches, files written off-thread) against a
   reference-style loop (pipeline rebuilt from disk per class, PEFT LoRA layers unmerged, one image per call).
   The images must agree.
2. adapter switch (merge + restore per class) against a pipeline reload per class, both against the time to
   generate one class's images.
3. UNet step with the LoRA merged against PEFT's unmerged LoRA layers.
4. classifier data: batches from the decoded-image cache (whole images, shorter side 448 px) against decoding each
   batch's 512 px PNGs as it comes (what the classifier does with a set over the cache's bound). The batches must
   be identical.
5. classifier text step (forward + backward of the LoRA'd text tower over the class prompts): padded to the longest
   prompt against padded to 77 tokens. The text features must agree.
6. merging a weighted mix of two LoRAs (LoFT's fusion) against merging one, merge + exact restore each. A mix with
   weights (1, 0) must give the one LoRA's weights exactly.

Timed sides alternate in rounds and the median round counts, so a load spike from another process hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import machine, commit, max_pixel_diff, quiet, random_lora, requests, timed

SIZES = {
    "fast": dict(classes=2, per_class=3, steps=3, unet_batch=4, unet_rounds=3, images=24, batch=8, epochs=3,
                 text_classes=4, text_rounds=3),
    "full": dict(classes=3, per_class=10, steps=20, unet_batch=8, unet_rounds=7, images=96, batch=32, epochs=4,
                 text_classes=37, text_rounds=7),
}


def median_rounds(fns: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each fn over rounds, the fns called in turn within each round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


class TextToImage:
    """The method both sides run: text-to-image at the benchmark's steps and guidance 2.0."""

    name = "bench-text"

    def __init__(self, steps: int):
        self.steps = steps

    def sample(self, ctx, sampler, batch):
        return sampler.text_to_image(batch, num_inference_steps=self.steps, guidance_scale=2.0)


def bench_generation(sd_folder: Path, work: Path, s: dict) -> dict:
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    from datadream_bench.engine.generate import generate
    from datadream_bench.engine.lora import unmerged_lora
    from datadream_bench.engine.manifest import read_manifest, write_atomic
    from datadream_bench.engine.sampler import Sampler

    def load():
        pipe = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True, safety_checker=None,
                                                       feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    reqs = requests(s["classes"], s["per_class"])
    t: dict[str, float] = {}
    # The engine: one load for the whole run, then generate() with a merge per class.
    with timed(t, "engine"):
        pipe = load()
        adapters = {f"class-{c}": random_lora(pipe, seed=c) for c in range(s["classes"])}
        report = generate(TextToImage(s["steps"]), Sampler(pipe, "cpu", torch.float32), reqs, work / "engine",
                          batch_size=s["per_class"], load_adapter=adapters.__getitem__)
    # The reference-style loop: reload per class, unmerged LoRA, one image per call, each file written in turn.
    naive_images = {}
    reload_s = []
    with timed(t, "naive"):
        for c in range(s["classes"]):
            r0 = time.perf_counter()
            p = load()
            reload_s.append(time.perf_counter() - r0)
            with unmerged_lora({"unet": p.unet, "text_encoder": p.text_encoder}, adapters[f"class-{c}"]):
                for r in reqs:
                    if r.label != c:
                        continue
                    img = p(prompt=[r.prompt], num_inference_steps=s["steps"], guidance_scale=2.0,
                            generator=[torch.Generator("cpu").manual_seed(r.seed)]).images[0]
                    write_atomic(img, work / "naive" / f"{r.id}.png")
                    naive_images[r.id] = np.asarray(img)
    done = read_manifest(work / "engine" / "manifest.jsonl")
    diff = max(max_pixel_diff(np.asarray(Image.open(work / "engine" / done[i]["file"])), a)
               for i, a in naive_images.items())
    per_class_gen = (report.seconds - report.adapter_seconds) / s["classes"]
    return {
        "images": len(reqs), "steps": s["steps"], "engine_s": t["engine"], "naive_s": t["naive"],
        "speedup": t["naive"] / t["engine"], "max_pixel_diff": diff,
        "adapter_switch_s_per_class": report.adapter_seconds / s["classes"],
        "reload_s_per_class": statistics.median(reload_s),
        "generation_s_per_class": per_class_gen,
        "switch_share_of_class": report.adapter_seconds / s["classes"] / per_class_gen,
        "reload_share_of_class": statistics.median(reload_s) / per_class_gen,
    }


def bench_lora_step(sd_folder: Path, s: dict) -> dict:
    from datadream_bench.engine.lora import merged_lora, unmerged_lora
    from datadream_bench.models.loading import load_sd

    pipe = load_sd(str(sd_folder))
    unet = pipe.unet
    weights = random_lora(pipe, seed=11, text_encoder=False)
    b = 2 * s["unet_batch"]  # guidance doubles the batch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 4, unet.config.sample_size, unet.config.sample_size, generator=g)
    c = torch.randn(b, 77, unet.config.cross_attention_dim, generator=g)
    ts = torch.full((b,), 500)
    outs = {}

    def step(kind, ctx):
        def run():
            with ctx({"unet": unet}, weights), torch.no_grad():
                outs[kind] = unet(x, ts, c).sample
        return run

    # Steps inside one context: what the loop pays per step, not the merge (counted in the adapter switch).
    def steps(kind, ctx, n=5):
        def run():
            with ctx({"unet": unet}, weights), torch.no_grad():
                for _ in range(n):
                    outs[kind] = unet(x, ts, c).sample
        return run

    m = median_rounds({"merged": steps("merged", merged_lora), "unmerged": steps("unmerged", unmerged_lora)},
                      s["unet_rounds"])
    return {"batch": b, "merged_s": m["merged"] / 5, "unmerged_s": m["unmerged"] / 5,
            "speedup": m["unmerged"] / m["merged"],
            "max_abs_diff": float((outs["merged"] - outs["unmerged"]).abs().max())}


def bench_lora_mix(sd_folder: Path, s: dict) -> dict:
    from datadream_bench.engine.lora import merged_lora
    from datadream_bench.models.loading import load_sd

    pipe = load_sd(str(sd_folder))
    components = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    a, b = random_lora(pipe, rank=2, seed=21), random_lora(pipe, rank=2, seed=22)
    mix, one_zero = [(a, 0.5), (b, 0.5)], [(a, 1.0), (b, 0.0)]

    def merge(lora):
        def run():
            with merged_lora(components, lora):
                pass
        return run

    def merged_weights(lora):
        with merged_lora(components, lora):
            return {k: v.clone() for k, v in pipe.unet.state_dict().items()}

    m = median_rounds({"one": merge(a), "mix": merge(mix)}, s["unet_rounds"])
    one, zero = merged_weights(a), merged_weights(one_zero)
    return {"one_s": m["one"], "mix_s": m["mix"], "ratio": m["mix"] / m["one"],
            "one_zero_equals_one": all(torch.equal(one[k], zero[k]) for k in one)}


def smooth_pngs(folder: Path, n: int, size: int = 512) -> list[str]:
    """PNGs with the smooth content of generated images (compress like photos do, unlike pure noise)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        low = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize((size, size), Image.BICUBIC)
        path = folder / f"{i:05d}.png"
        img.save(path)
        paths.append(str(path))
    return paths


def bench_loader(work: Path, s: dict) -> dict:
    """Steady state (cache built, batches indexed out of it) and amortised (the one decode of every file counted,
    over the epochs measured: the ratio grows with the epochs, 60 in the paper's classifier). The per-step side is
    what the classifier does with a set over the cache's bound: decode each batch's files as it comes."""
    from datadream_bench.classifier import data

    paths = smooth_pngs(work / "pngs", s["images"])
    cap = 448  # the classifier's decoded size for a 224 px CLIP: shorter side at twice 224
    orders = [data.epoch_order(len(paths), e) for e in range(s["epochs"])]
    batches = [rows for order in orders for rows in data.batch_indices(order, s["batch"])]
    got, t = {}, {}
    with timed(t, "decode_once"):
        images = data.decode_images(paths, cap, square=False, workers=1, cache_dir=work / "cache")
    streamed = data.decode_images(paths, cap, square=False, workers=1, cache_dir=work / "cache-none", limit=0)
    rows = torch.arange(len(paths))
    flags = torch.zeros(len(paths), dtype=torch.long), torch.zeros(len(paths), dtype=torch.bool)

    def cached():
        ts = data.TrainSet(images, rows, *flags)
        got["cached"] = [torch.stack(ts.batch(b)[0]) for b in batches]

    def per_step():
        ts = data.TrainSet(streamed, rows, *flags)
        got["per_step"] = [torch.stack(ts.batch(b)[0]) for b in batches]

    m = median_rounds({"cached": cached, "per_step": per_step}, 3)
    same = all(torch.equal(a, b) for a, b in zip(got["cached"], got["per_step"]))
    n = len(batches) * s["batch"]
    return {"images_per_epoch": len(paths), "epochs": s["epochs"], "batch": s["batch"],
            "decode_once_s": t["decode_once"], "cached_images_per_s": n / m["cached"],
            "per_step_images_per_s": n / m["per_step"], "speedup": m["per_step"] / m["cached"],
            "speedup_amortised": m["per_step"] / (m["cached"] + t["decode_once"]), "identical_batches": same}


def _text_step(model, inputs: dict, feats: dict, kind: str):
    """One classifier text step: LoRA'd text tower over every class prompt, forward and backward."""
    import torch.nn.functional as F

    def run():
        model.zero_grad(set_to_none=True)
        f = F.normalize(model(**inputs).text_embeds, dim=-1)
        f.sum().backward()
        feats[kind] = f.detach()
    return run


def bench_text(s: dict) -> dict:
    """The CLIP ViT-B/16 text tower (random weights) with LoRA on q/v, prompts of a real BPE length (CLIP's BPE gives
    "a satellite photo of a Herbaceous Vegetation Land" 11 tokens + start and end) padded to the longest prompt,
    against the same prompts padded to 77."""
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from datadream_bench.classifier.model import LORA_TARGETS
    from datadream_bench.perf.architectures import CLIP_VIT_B16

    torch.manual_seed(0)
    bos, eos = 49406, 49407
    config = CLIPTextConfig(**CLIP_VIT_B16["text_config"], projection_dim=CLIP_VIT_B16["projection_dim"],
                            bos_token_id=bos, eos_token_id=eos, pad_token_id=eos)
    model = CLIPTextModelWithProjection(config)
    model.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=16, lora_alpha=32, target_modules=list(LORA_TARGETS)), model)
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(6, 14, (s["text_classes"],), generator=g)  # words per prompt, BPE tokens
    longest = int(lengths.max()) + 2
    ids = torch.full((len(lengths), 77), eos)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths.tolist()):
        ids[i, 0] = bos
        ids[i, 1:n + 1] = torch.randint(0, 49000, (n,), generator=g)
        mask[i, :n + 2] = 1
    full = {"input_ids": ids, "attention_mask": mask}
    short = {"input_ids": ids[:, :longest], "attention_mask": mask[:, :longest]}
    feats = {}
    m = median_rounds({"longest": _text_step(model, short, feats, "longest"),
                       "full77": _text_step(model, full, feats, "full77")}, s["text_rounds"])
    return {"classes": len(lengths), "tokens": longest, "context": 77, "longest_s": m["longest"],
            "full77_s": m["full77"], "speedup": m["full77"] / m["longest"],
            "max_abs_diff": float((feats["longest"] - feats["full77"]).abs().max())}


def table(results: dict) -> str:
    g, lo, ld, tx = results["generation"], results["lora_step"], results["loader"], results["text"]
    mx = results["lora_mix"]
    rows = [
        ("engine vs reference-style loop (images/s)", f"{g['naive_s']:.1f} s / {g['engine_s']:.1f} s",
         f"{g['speedup']:.2f}x", f"max pixel diff {g['max_pixel_diff']}"),
        ("adapter switch vs pipeline reload, per class", f"{g['reload_s_per_class'] * 1e3:.0f} ms / "
         f"{g['adapter_switch_s_per_class'] * 1e3:.1f} ms",
         f"{g['reload_s_per_class'] / g['adapter_switch_s_per_class']:.0f}x",
         f"switch {g['switch_share_of_class']:.2%}, reload {g['reload_share_of_class']:.0%} of a class's generation"),
        ("UNet step: merged vs unmerged LoRA", f"{lo['unmerged_s'] * 1e3:.1f} ms / {lo['merged_s'] * 1e3:.1f} ms",
         f"{lo['speedup']:.2f}x", f"max abs diff {lo['max_abs_diff']:.1e}"),
        ("classifier data: cache vs PIL decode per step", f"{ld['cached_images_per_s']:.0f} / "
         f"{ld['per_step_images_per_s']:.0f} images/s", f"{ld['speedup']:.1f}x",
         ("identical batches" if ld["identical_batches"] else "BATCHES DIFFER")
         + f"; {ld['speedup_amortised']:.1f}x with the one decode counted over {ld['epochs']} epochs"),
        ("text step (ViT-B/16 text tower): longest prompt vs 77 tokens",
         f"{tx['full77_s'] * 1e3:.1f} ms / {tx['longest_s'] * 1e3:.1f} ms",
         f"{tx['speedup']:.2f}x", f"{tx['tokens']} vs {tx['context']} tokens, max abs diff {tx['max_abs_diff']:.1e}"),
        ("LoRA merge + restore: mix of two vs one", f"{mx['mix_s'] * 1e3:.1f} ms / {mx['one_s'] * 1e3:.1f} ms",
         f"{mx['ratio']:.2f}x", "weights (1, 0) == one LoRA" if mx["one_zero_equals_one"] else "(1, 0) MIX DIFFERS"),
    ]
    lines = ["| comparison | slow / fast | ratio | check |", "|---|---:|---:|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", default=os.environ.get("DD_BENCH_FAST") == "1",
                        help="CI mode: smaller sizes, under 2 minutes (also DD_BENCH_FAST=1)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default); one thread "
                        "gives steadier ratios on a machine shared with other jobs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()
    s = SIZES["fast" if args.fast else "full"]
    from datadream_bench.models.tiny import save_tiny_sd

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sd_folder = save_tiny_sd(work / "sd", seed=0)
        results = {
            "generation": bench_generation(sd_folder, work / "gen", s),
            "lora_step": bench_lora_step(sd_folder, s),
            "loader": bench_loader(work / "loader", s),
            "text": bench_text(s),
            "lora_mix": bench_lora_mix(sd_folder, s),
        }
    record = {"mode": "fast" if args.fast else "full", "sizes": s, "machine": machine(), "commit": commit(),
              "seconds": time.perf_counter() - start, "results": results}
    print(table(results))
    print(f"\n{record['mode']} mode, {record['seconds']:.0f} s, {machine()['cpus']} CPUs, torch "
          f"{torch.__version__}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
