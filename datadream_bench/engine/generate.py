"""Generate a method's images: consecutive ids in batches, one LoRA merge per adapter, files written off-thread.

Each image's seed comes from its id, so batch size, resume point and sharding never change which image is which.
A crash loses at most the batches whose files were not yet written; a rerun makes only what is missing.

With a filter (see engine.filter), each image id is a slot with a fixed sequence of candidates: candidate `attempt`
is seeded from the id and the attempt number only. The first candidate the filter accepts is kept; when the filter's
give-up rule says so (max_attempts of the slot, or the class's budget spent), the candidate is kept anyway and marked
forced. Rejections are logged with their batch's records, so a resumed run goes on from the next candidate of each
slot, forms the batches an unbroken run formed, and keeps the same images, byte for byte at any batch size.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path
from typing import Callable, Sequence

from .. import faults
from ..contract import Adapter, ImageRequest
from ..fingerprint import seed_from
from ..method import Method
from .filter import ImageFilter, timeout_for
from .manifest import MANIFEST, REJECTIONS, ManifestWriter, read_manifest, read_rejections, write_atomic
from .sampler import AppliedAdapter, Sampler


@dataclass
class GenerationReport:
    images: int = 0  # made by this call
    reused: int = 0  # found finished from an earlier call
    seconds: float = 0.0
    adapter_seconds: float = 0.0  # time spent merging / restoring LoRA weights
    per_class: dict = field(default_factory=dict)
    # With a filter: its settings, and per class (and in total) candidates, accepted, rejected, forced,
    # acceptance_rate and filter seconds, over the whole generated set (earlier calls included).
    filter: dict | None = None
    repaired: list = field(default_factory=list)  # "<path>: <problem>" of each unusable image found and made again


def check_requests(requests: list[ImageRequest]) -> None:
    seen = set()
    for r in requests:
        if r.id in seen:
            raise ValueError(f"the method planned image {r.id} twice")
        seen.add(r.id)


def default_candidate_seed(request: ImageRequest, attempt: int) -> int:
    """Candidate 0 is the request's own seed; later ones come from it and the attempt number."""
    return request.seed if attempt == 0 else seed_from("candidate", request.seed, attempt)


def generate(
    method: Method,
    sampler: Sampler,
    requests: list[ImageRequest],
    out_dir: Path,
    *,
    batch_size: int,
    load_adapter: Callable[[Adapter], AppliedAdapter],
    ctx=None,
    progress: Callable[[str, int, int], None] = lambda what, done, total: None,
    writers: int = 2,
    image_filter: ImageFilter | None = None,
    candidate_seed: Callable[[ImageRequest, int], int] = default_candidate_seed,
    class_names: Sequence[str] | None = None,
    manifest: Path | None = None,
    rejections: Path | None = None,
    done: dict | None = None,
    rejected: dict | None = None,
    path_label: Callable[[str], str] = str,
) -> GenerationReport:
    """Make every request not yet finished; image files go to out_dir/images/, records to `manifest` (default
    out_dir/manifest.jsonl) and rejected candidates to `rejections`. done / rejected: what is already finished
    and rejected, when the caller has read it (from several manifest pieces); else read from the two files.
    path_label: how an init image's path is written in the manifest (the runner makes it relative to the work dir
    when inside it, so that a copied work dir still names its shots)."""
    check_requests(requests)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = manifest or out_dir / MANIFEST
    rejections = rejections or out_dir / REJECTIONS
    standalone = done is None
    if done is None:
        done = read_manifest(manifest)
    pending = [r for r in requests if r.id not in done]
    report = GenerationReport(reused=len(requests) - len(pending))
    start = time.perf_counter()
    if rejected is None:
        rejected = read_rejections(rejections) if image_filter is not None else {}
    rejected_before = rejected
    # The next candidate of each pending slot: the one after its last logged rejection.
    attempt = {r.id: 1 + max(rejected_before.get(r.id, {-1: None})) for r in pending}
    timeout = timeout_for(image_filter, requests, rejected_before) if image_filter is not None else None
    writer = ManifestWriter(manifest)
    rejection_log = ManifestWriter(rejections) if image_filter is not None else None
    finished = report.reused
    progress("generate", finished, len(requests))
    in_flight: list[tuple[list[Future], list[dict], list[dict]]] = []  # (file writes, records, rejections)

    def settle(keep: int) -> None:
        # Record a batch in the manifest only once all its files are written, and its rejections with it: a crash
        # then leaves the logs at a batch boundary, from which a rerun forms the same batches again.
        nonlocal finished
        while len(in_flight) > keep:
            futures, records, rejections = in_flight.pop(0)
            for fut, record in zip(futures, records):
                record.update(fut.result())  # the file's size and digest, checked whenever it is reused
            if rejection_log is not None:
                rejection_log.append(rejections)
            writer.append(records)
            faults.point("generate.recorded")
            finished += len(records)
            progress("generate", finished, len(requests))

    try:
        with ThreadPoolExecutor(max_workers=writers) as pool:
            for adapter, group in groupby(pending, key=lambda r: r.adapter):
                t = time.perf_counter()
                weights = load_adapter(adapter) if adapter else None
                with sampler.adapted(weights):
                    report.adapter_seconds += time.perf_counter() - t
                    # Rejected slots go back in the queue, so batches stay full while some slots retry. First in,
                    # first out keeps the queue in (attempt, plan order) at every batch boundary; a rerun starts
                    # from that order, and so forms the batches an unbroken run formed (the batch decides which CPU
                    # kernels run, and so the last bit of a pixel).
                    group = list(group)
                    order = {r.id: i for i, r in enumerate(group)}
                    queue = deque(sorted(group, key=lambda r: (attempt[r.id], order[r.id])))
                    while queue:
                        slots = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
                        batch = [replace(r, seed=candidate_seed(r, attempt[r.id])) for r in slots]
                        images = method.sample(ctx, sampler, batch)
                        if len(images) != len(batch):
                            raise ValueError(f"{method.name}.sample returned {len(images)} images for {len(batch)}")
                        faults.point("generate.batch")
                        verdicts, filter_seconds = [True] * len(batch), 0.0
                        if image_filter is not None:
                            t = time.perf_counter()
                            verdicts = list(image_filter.accept(batch, images))
                            filter_seconds = (time.perf_counter() - t) / len(batch)
                            if len(verdicts) != len(batch):
                                raise ValueError(f"the filter judged {len(verdicts)} images of {len(batch)}")
                            faults.point("filter.judged")
                        futures, records, rejections = [], [], []
                        for slot, req, img, ok in zip(slots, batch, images, verdicts):
                            a = attempt[req.id]
                            if not ok and not timeout.forced(req, a):
                                rejections.append({"id": req.id, "label": req.label, "attempt": a, "seed": req.seed,
                                                   "filter_seconds": filter_seconds})
                                timeout.rejected(req, a)
                                attempt[req.id] = a + 1
                                queue.append(slot)
                                continue
                            rel = f"images/{req.label:04d}/{req.id}.png"
                            futures.append(pool.submit(write_atomic, img, out_dir / rel))
                            record = _record(req, rel, path_label)
                            if image_filter is not None:
                                record.update(attempt=a, forced=not ok, filter_seconds=filter_seconds)
                            records.append(record)
                            report.per_class[req.label] = report.per_class.get(req.label, 0) + 1
                        if records or rejections:
                            in_flight.append((futures, records, rejections))
                            report.images += len(records)
                        settle(keep=1)  # keep the GPU busy with the next batch while this one is written
                    t = time.perf_counter()
                report.adapter_seconds += time.perf_counter() - t
            settle(keep=0)
    finally:
        writer.close()
        if rejection_log is not None:
            rejection_log.close()
    if image_filter is not None and standalone:
        report.filter = filter_summary(out_dir, requests, image_filter, class_names)
    report.seconds = time.perf_counter() - start
    return report


def filter_summary(out_dir: Path, requests: list[ImageRequest], image_filter: ImageFilter,
                   class_names: Sequence[str] | None = None, done: dict | None = None,
                   rejected: dict | None = None) -> dict:
    """Per class: candidates judged, accepted by the filter, rejected, forced, acceptance rate, filter seconds.
    done / rejected: the finished and rejected records, when the caller has them; else read from out_dir."""
    done = read_manifest(out_dir / MANIFEST) if done is None else done
    rejected = read_rejections(out_dir / REJECTIONS) if rejected is None else rejected
    ids = {r.id: r.label for r in requests}
    per_label: dict[int, dict] = {}

    def row(label: int) -> dict:
        return per_label.setdefault(label, {"candidates": 0, "accepted": 0, "rejected": 0, "forced": 0,
                                            "filter_seconds": 0.0})

    for image_id, label in ids.items():
        for rec in rejected.get(image_id, {}).values():
            r = row(label)
            r["candidates"] += 1
            r["rejected"] += 1
            r["filter_seconds"] += rec.get("filter_seconds", 0.0)
        rec = done.get(image_id)
        if rec is not None and "forced" in rec:
            r = row(label)
            r["candidates"] += 1
            r["forced" if rec["forced"] else "accepted"] += 1
            r["filter_seconds"] += rec.get("filter_seconds", 0.0)
    total = {"candidates": 0, "accepted": 0, "rejected": 0, "forced": 0, "filter_seconds": 0.0}
    per_class = {}
    for label in sorted(per_label):
        r = per_label[label]
        for k in total:
            total[k] += r[k]
        name = class_names[label] if class_names is not None else str(label)
        per_class[name] = _rates(r)
    return {"settings": image_filter.describe(), "per_class": per_class, "total": _rates(total)}


def _rates(r: dict) -> dict:
    # The share of judged candidates the filter accepted (forced ones were rejected, then kept anyway).
    rate = r["accepted"] / r["candidates"] if r["candidates"] else None
    return {**r, "acceptance_rate": None if rate is None else round(rate, 4),
            "filter_seconds": round(r["filter_seconds"], 4)}


def _record(req: ImageRequest, rel: str, path_label: Callable[[str], str] = str) -> dict:
    record = req.record()
    if req.init_image:
        record["init_image"] = path_label(req.init_image)
    return {**record, "file": rel}
