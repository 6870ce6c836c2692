"""The stages of a cell after the few-shot draw: adapt, generate, train, evaluate. Each one reuses its artifact when
the artifact's key (the fingerprint of its inputs) is already on disk, so a rerun does only what is missing."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file

from ..classifier.base import Classifier, TrainJob
from ..context import CellContext
from ..datasets.manifest import Sample
from ..engine.generate import GenerationReport, generate
from ..engine.lora import load_lora, save_lora
from ..engine.manifest import read_manifest
from ..engine.prompts import check_prompts_fit
from ..engine.sampler import Sampler
from ..method import Method
from .workdir import safe_name, write_json_atomic


def adapt(method: Method, ctx: CellContext, folder: Path) -> tuple[dict[str, Path], int]:
    """Run every adapt unit not yet on disk. Returns (unit -> LoRA file, units made now). Fills ctx.adaptations."""
    units = method.adapt_units(ctx)
    if len(set(units)) != len(units):
        raise ValueError(f"{method.name}.adapt_units returned duplicate unit names")
    lora_files: dict[str, Path] = {}
    made = 0
    for i, unit in enumerate(units):
        stem = folder / safe_name(unit)
        record_path = stem.with_suffix(".json")  # written last: its presence means the unit is finished
        if not record_path.exists():
            ctx.progress("adapt", i, len(units))
            start = time.perf_counter()
            result = method.adapt(ctx, unit)
            if result.lora is not None:
                folder.mkdir(parents=True, exist_ok=True)
                save_lora(result.lora, stem.with_suffix(".safetensors"))
            write_json_atomic(record_path, {"unit": unit, "lora": result.lora is not None, "data": result.data,
                                            "seconds": time.perf_counter() - start})
            made += 1
        record = json.loads(record_path.read_text())
        ctx.adaptations[unit] = record["data"]
        if record["lora"]:
            lora_files[unit] = stem.with_suffix(".safetensors")
    ctx.progress("adapt", len(units), len(units))
    return lora_files, made


def generate_images(method: Method, ctx: CellContext, folder: Path, lora_files: dict[str, Path],
                    batch_size: int) -> tuple[list[Sample], GenerationReport]:
    """Make every planned image not yet in the folder's manifest; return all of them as labelled samples."""
    requests = method.plan(ctx)
    unknown = sorted({r.adapter for r in requests if r.adapter is not None} - set(lora_files))
    if unknown:
        raise ValueError(f"{method.name}.plan names adapters that the adapt stage did not produce: {unknown[:5]}")
    done = read_manifest(folder / "manifest.jsonl")
    if all(r.id in done for r in requests):
        # The whole set exists (an earlier setting made it): no pipeline or filter model is loaded for nothing.
        report = GenerationReport(reused=len(requests))
    else:
        pipe = ctx.sd_pipeline()
        check_prompts_fit(pipe.tokenizer, sorted({r.prompt for r in requests}), f"{method.name} prompts")
        # A filtering method's models load here, before the first image (plan_grid already checked they exist).
        image_filter = method.image_filter(ctx)
        sampler = Sampler(pipe, ctx.device, ctx.dtype, config=ctx.config, context=ctx)

        def candidate_seed(r, attempt: int) -> int:  # a filtered slot's later candidates: from id and attempt only
            return r.seed if attempt == 0 else ctx.image_seed(r.label, r.index, attempt)

        report = generate(method, sampler, requests, folder, batch_size=batch_size,
                          load_adapter=lambda unit: load_lora(lora_files[unit]), progress=ctx.progress,
                          image_filter=image_filter, candidate_seed=candidate_seed, class_names=ctx.dataset.classes)
        done = read_manifest(folder / "manifest.jsonl")
    missing = [r.id for r in requests if r.id not in done]
    if missing:
        raise RuntimeError(f"generation finished with {len(missing)} planned images missing, e.g. {missing[:3]}")
    samples = [Sample(str(folder / done[r.id]["file"]), r.label) for r in requests]
    return samples, report


def train(classifier: Classifier, job: TrainJob, folder: Path) -> tuple[dict, bool]:
    """(selected state, reused). The state is saved as safetensors with the classifier's account of the training."""
    state_path, info_path = folder / "state.safetensors", folder / "train.json"
    if info_path.exists():
        job.info.update(json.loads(info_path.read_text()))
        return load_file(state_path), True
    state = classifier.train(job)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_name("state.safetensors.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp)
    tmp.replace(state_path)
    write_json_atomic(info_path, job.info)
    return state, False


def evaluate(classifier: Classifier, job: TrainJob, state: dict) -> dict:
    metrics = classifier.evaluate(job, state, "test")
    for key in ("top1", "n"):
        if key not in metrics:
            raise ValueError(f"{classifier.name}.evaluate returned no {key!r}: {sorted(metrics)}")
    return metrics


def generation_summary(report: GenerationReport) -> dict:
    return asdict(report)
