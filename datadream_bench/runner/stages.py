"""The stages of a cell after the few-shot draw: adapt, generate, train, evaluate. Each one reuses its artifact when
the artifact's key (the fingerprint of its inputs) is already on disk, so a rerun does only what is missing."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file

from .. import faults
from ..artifacts import (CorruptArtifact, CorruptReports, check_file, read_record, sweep_temps, write_record,
                         write_with)
from ..classifier.base import Classifier, TrainJob
from ..context import CellContext
from ..contract import adapter_units
from ..datasets.manifest import Sample
from ..engine.artifacts import AdapterLoader, load_adaptation, save_tensors
from ..engine.generate import GenerationReport, check_requests
from ..engine.lora import save_lora
from ..engine.prompts import check_prompts_fit
from ..engine.sampler import Sampler
from ..method import Method
from ..validation import check_state, check_units
from .claims import claim_or_wait, try_claim
from .generation import Engine, GeneratedSet
from .workdir import portable_path, safe_name, unit_record


def adapt(method: Method, ctx: CellContext, folder: Path, only: list[str] | None = None
          ) -> tuple[dict[str, Path], int]:
    """Run every adapt unit not yet on disk (or only those in `only`: an executor spreads the units of one set over
    several workers). Returns (unit -> LoRA file, units made now). Fills ctx.adaptations.

    Each unit is made under its own claim, so processes sharing the work dir split the units between them; a unit
    another process holds is waited for last. A unit's record (written last, with the size and digest of its LoRA
    file) is checked before reuse: a damaged record or LoRA file is reported with its path and made again."""
    units = check_units(method, method.adapt_units(ctx))
    if only is not None:
        units = [u for u in units if u in set(only)]
    report = CorruptReports()

    def finished(unit: str) -> dict | None:
        record_path = unit_record(folder, unit)
        if not record_path.exists():
            return None
        try:
            record = read_record(record_path)
            for part in ("lora", "tensors"):  # the unit's files: its LoRA, its learned tokens and tensors
                if record.get(part) is not None:
                    path = folder / record[part]["file"]
                    problem = check_file(path, record[part])
                    if problem:
                        raise CorruptArtifact(path, problem)
            return record
        except CorruptArtifact as e:
            report(e)
            return None

    def make(unit: str) -> dict:
        stem = folder / safe_name(unit)
        faults.point("adapt.unit")
        start = time.perf_counter()
        result = method.adapt(ctx, unit)
        lora = None
        if result.lora is not None:
            lora = {"file": stem.with_suffix(".safetensors").name,
                    **save_lora(result.lora, stem.with_suffix(".safetensors"))}
        faults.point("adapt.saved")
        record = {"unit": unit, "lora": lora, "tensors": save_tensors(result, stem), "data": result.data,
                  "seconds": time.perf_counter() - start}
        write_record(unit_record(folder, unit), record)  # last: its presence means the unit is finished
        return record

    records: dict[str, dict] = {}
    made = 0
    deferred = []
    folder.mkdir(parents=True, exist_ok=True)
    sweep_temps(folder)
    for i, unit in enumerate(units):
        record = finished(unit)
        if record is None:
            claim = try_claim(folder / f"{safe_name(unit)}.claim", what=f"{method.name} adapt unit {unit}")
            if claim is None:
                deferred.append(unit)
                continue
            with claim:
                record = finished(unit)
                if record is None:
                    ctx.progress("adapt", i, len(units))
                    record, made = make(unit), made + 1
        records[unit] = record
    for unit in deferred:
        claim = claim_or_wait(folder / f"{safe_name(unit)}.claim", lambda u=unit: finished(u) is not None,
                              what=f"{method.name} adapt unit {unit}")
        if claim is not None:
            with claim:
                records[unit], made = make(unit), made + 1
        else:
            records[unit] = finished(unit)
    lora_files: dict[str, Path] = {}
    for unit in units:
        ctx.adaptations[unit] = load_adaptation(folder, records[unit])
        if records[unit]["lora"] is not None:
            lora_files[unit] = folder / records[unit]["lora"]["file"]
    ctx.progress("adapt", len(units), len(units))
    return lora_files, made


def plan_images(method: Method, ctx: CellContext, folder: Path, lora_files: dict[str, Path]) -> GeneratedSet:
    requests = method.plan(ctx)
    check_requests(requests)
    loader = AdapterLoader(lora_files, ctx.adaptations)
    unknown = sorted({u for r in requests for u, _ in adapter_units(r.adapter) if not loader.known(u)})
    if unknown:
        raise ValueError(f"{method.name}.plan names adapters that the adapt stage did not produce: {unknown[:5]}")
    return GeneratedSet(folder, requests)


def engine_factory(method: Method, ctx: CellContext, images: GeneratedSet, lora_files: dict[str, Path],
                   batch_size: int, roots: dict):
    def build() -> Engine:
        pipe = ctx.sd_pipeline()
        check_prompts_fit(pipe.tokenizer, sorted({r.prompt for r in images.requests}), f"{method.name} prompts")
        # A filtering method's models load here, before the first image (plan_grid already checked they exist).
        image_filter = method.image_filter(ctx)
        sampler = Sampler(pipe, ctx.device, ctx.dtype)

        def candidate_seed(r, attempt: int) -> int:  # a filtered slot's later candidates: from id and attempt only
            return r.seed if attempt == 0 else ctx.image_seed(r.label, r.index, attempt)

        return Engine(sampler, AdapterLoader(lora_files, ctx.adaptations), image_filter, candidate_seed, batch_size,
                      tuple(ctx.dataset.classes), lambda p: portable_path(p, roots["work_dir"]), ctx=ctx)

    return build


def generate_images(method: Method, ctx: CellContext, folder: Path, lora_files: dict[str, Path],
                    batch_size: int, roots: dict | None = None) -> tuple[list[Sample], GenerationReport]:
    """Make every planned image not yet finished (blocks other processes hold are theirs to make); return all of
    them as labelled samples, once the set is complete and merged. roots: {"work_dir": ...}; init-image paths
    are recorded relative to it when inside it (see workdir.portable_path)."""
    images = plan_images(method, ctx, folder, lora_files)
    done, _ = images.state()
    if not images.missing(done):
        # The whole set exists (an earlier setting or another process made it): no pipeline or filter model loads.
        report = GenerationReport(reused=len(images.requests))
    else:
        roots = roots or {"work_dir": folder.parent.parent.parent}  # <work dir>/generated/<method>/<key>
        report = images.make(engine_factory(method, ctx, images, lora_files, batch_size, roots), method,
                             progress=ctx.progress)
        if images.engine is not None and images.engine.image_filter is not None:
            images.finish()
            report.filter = images.filter_report(images.engine.image_filter, ctx.dataset.classes)
    done = images.finish()
    report.repaired = list(images.corrupt)
    samples = [Sample(str(folder / done[r.id]["file"]), r.label) for r in images.requests]
    return samples, report


def train(classifier: Classifier, job: TrainJob, folder: Path) -> tuple[dict, bool]:
    """(selected state, reused). The state is saved as safetensors; train.json, written last, holds the
    classifier's account of the training and the state file's size and digest, both checked before reuse."""
    state_path, info_path = folder / "state.safetensors", folder / "train.json"
    report = CorruptReports("trained again")

    def finished() -> dict | None:
        if not info_path.exists():
            return None
        try:
            record = read_record(info_path)
            problem = check_file(state_path, record.get("state"))
            if problem:
                raise CorruptArtifact(state_path, problem)
            return record
        except CorruptArtifact as e:
            report(e)
            return None

    claim = claim_or_wait(folder.with_name(folder.name + ".claim"), lambda: finished() is not None,
                          what=f"classifier {folder.name}")
    if claim is None:
        job.info.update(finished()["info"])
        return load_file(state_path), True
    with claim:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_temps(folder)
        faults.point("train.start")
        state = check_state(classifier, classifier.train(job))
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        digest = write_with(state_path, lambda tmp: save_file(tensors, tmp))
        faults.point("train.saved")
        write_record(info_path, {"info": job.info, "state": digest})
    return state, False


def evaluate(classifier: Classifier, job: TrainJob, state: dict) -> dict:
    metrics = classifier.evaluate(job, state, "test")
    for key in ("top1", "n"):
        if key not in metrics:
            raise ValueError(f"{classifier.name}.evaluate returned no {key!r}: {sorted(metrics)}")
    return metrics


def generation_summary(report: GenerationReport) -> dict:
    return asdict(report)
