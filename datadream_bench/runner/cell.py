"""One cell: few-shot draw, adapt, generate, train, evaluate; then one row in the store.

Every artifact is keyed by the fingerprint of exactly what it depends on, so a second setting reuses the first one's
generated set, a rerun after a crash picks up where it stopped, and a changed input never meets a stale artifact.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

import torch

from ..classifier.base import Classifier, TrainJob
from .. import faults
from ..context import CellContext, shots_for
from ..datasets.fewshot import FewShot, save_few_shot
from ..datasets.manifest import DatasetManifest
from ..fingerprint import fingerprint
from ..method import SYNTHETIC, SYNTHETIC_REAL, Method, stage_fields
from ..models import loading
from ..quality.pool import save_real_pool
from ..spec import CellSpec
from ..store import ResultsStore
from ..store.environment import environment
from . import stages
from .events import CellOutcome, Reporter
from .workdir import WorkDir

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Cell:
    """A cell ready to run: its spec plus the resolved objects the spec names."""

    spec: CellSpec
    method: Method
    method_config: object  # the method's validated Config (run fields included)
    classifier: Classifier
    classifier_config: object
    dataset: DatasetManifest
    fewshot: FewShot
    provenance: dict = field(default_factory=dict)  # plugin names and versions, dataset summary


def artifact_keys(cell: Cell) -> dict:
    """The fingerprint of each stage's artifact. A stage's key holds the key of the stage it reads from."""
    spec, method = cell.spec, cell.method
    keys = {"dataset": spec.inputs["dataset"], "fewshot": cell.fewshot.fingerprint()}
    if method.generates and spec.setting in (SYNTHETIC, SYNTHETIC_REAL):
        # A method that never reads the shots makes the same images at every shot count: only the seed and the
        # class names (which seed each image) enter its key, so one set serves 1, 2, ... 16 shots.
        shots = keys["fewshot"] if method.reads_shots else {"seed": spec.seed, "classes": list(cell.dataset.classes)}
        keys["adapt"] = fingerprint({
            "method": method.name, "version": cell.provenance.get("method_version"),
            "code": spec.inputs.get("code", {}).get("method"),
            "config": stage_fields(cell.method_config, "adapt"), "fewshot": shots, "sd": spec.inputs["sd"],
            "prompts": [cell.dataset.prompt(label) for label in range(len(cell.dataset.classes))],
            "precision": spec.precision,
            # models the method loads itself (captioner, filter): a new checkpoint means new captions and images
            "models": spec.inputs.get("models"),
        })
        keys["generate"] = fingerprint({"adapt": keys["adapt"],
                                        "config": stage_fields(cell.method_config, "generate")})
    keys["classifier"] = fingerprint({
        "generate": keys.get("generate"), "setting": spec.setting, "classifier": spec.classifier,
        "prompts": classifier_prompts(cell),
        "version": cell.provenance.get("classifier_version"), "code": spec.inputs.get("code", {}).get("classifier"),
        "config": spec.classifier_config,
        "clip": spec.inputs["clip"], "fewshot": keys["fewshot"], "dataset": keys["dataset"], "seed": spec.seed,
        "precision": spec.precision,
    })
    return keys


def classifier_prompts(cell: Cell) -> list[str]:
    """The class prompts of the classifier's head: the method's (zero-shot CLIP's CoOp template), else the dataset's."""
    prompts = cell.method.classifier_prompts(cell.dataset, cell.method_config)
    return list(prompts) if prompts is not None else [cell.dataset.prompt(label)
                                                      for label in range(len(cell.dataset.classes))]


def run_cell(cell: Cell, workdir: WorkDir, store: ResultsStore, reporter: Reporter) -> CellOutcome:
    """Run a cell not yet in the store, and write its row."""
    if store.has(cell.spec.key()):
        return CellOutcome(cell.spec, "skipped")
    outcome, record = compute_cell(cell, workdir, reporter)
    store_record(store, record)
    return outcome


def store_record(store: ResultsStore, record: dict) -> None:
    store.add(record["spec"], record["cell_key"], record["metrics"]["top1"], record)


def compute_cell(cell: Cell, workdir: WorkDir, reporter: Reporter, argv: list[str] | None = None
                 ) -> tuple[CellOutcome, dict]:
    """Every stage of a cell; returns (outcome, result record). Writes artifacts, never the store: an executor's
    workers hand the record back and one process writes the store. argv: the command that asked for the cell."""
    spec = cell.spec
    key = spec.key()
    start = time.perf_counter()
    device = spec.runtime["device"]
    timings: dict[str, float] = {}
    load_s: dict[str, float] = {}  # the part of each stage's time spent loading models (timings_s includes it)
    reused: dict[str, object] = {}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    keys = artifact_keys(cell)
    t, loaded = time.perf_counter(), loading.load_seconds()
    faults.point("fewshot.draw")
    save_few_shot(cell.fewshot, workdir.fewshot(spec.dataset, keys["fewshot"]),
                  roots={"work_dir": workdir.root, "data_root": spec.data_root})
    faults.point("fewshot.saved")
    save_real_pool(cell.dataset, workdir)  # once per dataset: the train images the quality measures compare with
    timings["fewshot"], load_s["fewshot"] = time.perf_counter() - t, loading.load_seconds() - loaded

    ctx = CellContext(spec=spec, config=cell.method_config, dataset=cell.dataset,
                      fewshot=shots_for(cell.method, cell.fewshot), device=device, dtype=DTYPES[spec.precision],
                      progress=reporter.progress)
    synthetic, generation = [], None
    if "generate" in keys:
        t, loaded = time.perf_counter(), loading.load_seconds()
        lora_files, made = stages.adapt(cell.method, ctx, workdir.adapt(spec.method, keys["adapt"]))
        timings["adapt"], load_s["adapt"] = time.perf_counter() - t, loading.load_seconds() - loaded
        reused["adapt_units"] = len(ctx.adaptations) - made
        t, loaded = time.perf_counter(), loading.load_seconds()
        synthetic, report = stages.generate_images(cell.method, ctx, workdir.generated(spec.method, keys["generate"]),
                                                   lora_files, spec.runtime["batch_size"],
                                                   roots={"work_dir": workdir.root, "data_root": spec.data_root})
        timings["generate"], load_s["generate"] = time.perf_counter() - t, loading.load_seconds() - loaded
        reused["images"] = report.reused
        generation = stages.generation_summary(report)

    job = TrainJob(dataset=cell.dataset, fewshot=cell.fewshot, synthetic=synthetic, setting=spec.setting,
                   config=cell.classifier_config, clip_model=spec.clip_model, seed=spec.seed, device=device,
                   progress=reporter.progress, cache_dir=workdir.decoded_images, prompts=classifier_prompts(cell))
    t, loaded = time.perf_counter(), loading.load_seconds()
    state, reused["classifier"] = stages.train(cell.classifier, job, workdir.classifier(keys["classifier"]))
    timings["train"], load_s["train"] = time.perf_counter() - t, loading.load_seconds() - loaded
    t, loaded = time.perf_counter(), loading.load_seconds()
    faults.point("evaluate.start")
    metrics = stages.evaluate(cell.classifier, job, state)
    timings["evaluate"], load_s["evaluate"] = time.perf_counter() - t, loading.load_seconds() - loaded
    timings["total"] = time.perf_counter() - start

    record = {
        "cell_key": key,
        "spec": spec.model_dump(mode="json"),
        "artifacts": keys,
        "reused": reused,
        "provenance": cell.provenance,
        "method_notes": cell.method.notes,
        "environment": environment(),
        "timings_s": timings,
        "model_load_s": load_s,
        "peak_memory_mb": peak_memory_mb(device),
        "generation": generation,
        "classifier": job.info,
        "metrics": metrics,
        "argv": list(sys.argv if argv is None else argv),
    }
    return CellOutcome(spec, "done", top1=metrics["top1"], seconds=timings["total"]), record


def peak_memory_mb(device: str) -> dict:
    # ru_maxrss is the process's peak so far (KiB on Linux): an upper bound for this cell when cells share a process.
    out = {"process_rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["cuda_peak"] = torch.cuda.max_memory_allocated() / 2**20
    return out
