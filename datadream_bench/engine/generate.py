"""Generate a method's images: consecutive ids in batches, one LoRA merge per adapter, files written off-thread.

Each image's seed comes from its id, so batch size, resume point and sharding never change which image is which.
A crash loses at most the batches whose files were not yet written; a rerun makes only what is missing.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Callable

from ..method import ImageRequest, Method
from .lora import LoraWeights, merged_lora
from .manifest import ManifestWriter, read_manifest, write_atomic
from .sampler import Sampler


@dataclass
class GenerationReport:
    images: int = 0  # made by this call
    reused: int = 0  # found finished from an earlier call
    seconds: float = 0.0
    adapter_seconds: float = 0.0  # time spent merging / restoring LoRA weights
    per_class: dict = field(default_factory=dict)


def plan_batches(requests: list[ImageRequest], batch_size: int) -> list[list[ImageRequest]]:
    """Consecutive requests sharing an adapter, cut into batches of at most batch_size."""
    batches = []
    for _, group in groupby(requests, key=lambda r: r.adapter):
        group = list(group)
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    return batches


def check_requests(requests: list[ImageRequest]) -> None:
    seen = set()
    for r in requests:
        if r.id in seen:
            raise ValueError(f"the method planned image {r.id} twice")
        seen.add(r.id)


def generate(
    method: Method,
    sampler: Sampler,
    requests: list[ImageRequest],
    out_dir: Path,
    *,
    batch_size: int,
    load_adapter: Callable[[str], LoraWeights],
    progress: Callable[[str, int, int], None] = lambda what, done, total: None,
    writers: int = 2,
) -> GenerationReport:
    check_requests(requests)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.jsonl"
    done = read_manifest(manifest_path)
    pending = [r for r in requests if r.id not in done]
    report = GenerationReport(reused=len(requests) - len(pending))
    start = time.perf_counter()
    components = {"unet": sampler.pipe.unet, "text_encoder": sampler.pipe.text_encoder}
    writer = ManifestWriter(manifest_path)
    finished = report.reused
    progress("generate", finished, len(requests))
    in_flight: list[tuple[list[Future], list[dict]]] = []

    def settle(keep: int) -> None:
        # Record a batch in the manifest only once all its files are written.
        nonlocal finished
        while len(in_flight) > keep:
            futures, records = in_flight.pop(0)
            for fut in futures:
                fut.result()
            writer.append(records)
            finished += len(records)
            progress("generate", finished, len(requests))

    try:
        with ThreadPoolExecutor(max_workers=writers) as pool:
            for adapter, group in groupby(plan_batches(pending, batch_size), key=lambda b: b[0].adapter):
                t = time.perf_counter()
                weights = load_adapter(adapter) if adapter else None
                with merged_lora(components, weights):
                    report.adapter_seconds += time.perf_counter() - t
                    for batch in group:
                        images = method.sample(sampler, batch)
                        if len(images) != len(batch):
                            raise ValueError(f"{method.name}.sample returned {len(images)} images for {len(batch)}")
                        futures, records = [], []
                        for req, img in zip(batch, images):
                            rel = f"images/{req.label:04d}/{req.id}.png"
                            futures.append(pool.submit(write_atomic, img, out_dir / rel))
                            records.append(_record(req, rel))
                            report.per_class[req.label] = report.per_class.get(req.label, 0) + 1
                        in_flight.append((futures, records))
                        report.images += len(batch)
                        settle(keep=1)  # keep the GPU busy with the next batch while this one is written
                    t = time.perf_counter()
                report.adapter_seconds += time.perf_counter() - t
            settle(keep=0)
    finally:
        writer.close()
    report.seconds = time.perf_counter() - start
    return report


def _record(req: ImageRequest, rel: str) -> dict:
    return {
        "id": req.id,
        "label": req.label,
        "index": req.index,
        "seed": req.seed,
        "prompt": req.prompt,
        "adapter": req.adapter,
        "init_image": req.init_image,
        "file": rel,
    }
