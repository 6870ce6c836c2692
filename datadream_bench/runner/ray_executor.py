"""The grid on a Ray cluster: one task per stage unit that needs a GPU, wired as an explicit DAG keyed by artifact.

For each generated set (the cells of one method that share a `generate` artifact key):

    adapt tasks (the set's adapt units, spread over the cluster's GPU slots)
      -> generation shards (the set's image blocks, by id range; see runner.generation)
        -> one classifier task per cell (train + evaluate; it also merges the set's manifest pieces)

so the set is made once and every cell that reads it waits for it. A reference cell (no generation) is a single
classifier task. Each task gets only the cell's spec (JSON) and a reference to its dataset's checked manifest,
shared through Ray's object store once per dataset; the worker rebuilds the cell with build_cell and its own
plugin registry. Workers write artifacts into the shared work dir under claims (the same ones that keep two plain
`dd-bench run`s apart) and hand their result records back; the driver alone writes the SQLite store.

A worker that dies mid-task (killed, out of memory, lost node) is retried up to max_retries times: the retry
takes over the dead worker's claims and resumes from what is on disk, so the result is the same. A full disk stops
the grid as the local executor does: every other task is cancelled, and the rerun resumes. A task that asks
for more than any node has fails before anything is submitted (Ray would wait for such a node forever).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..diskspace import disk_full_message, is_disk_full
from ..errors import UsageError
from ..store import ResultsStore
from .cell import Cell, artifact_keys, store_record
from .claims import claim_or_wait, try_claim
from .events import CellOutcome, Reporter
from .generation import BLOCK, planned_images, recorded_images
from .grid import GridOutcome
from .workdir import WorkDir, unit_record

log = logging.getLogger("dd_bench")

INSTALL_HINT = 'the Ray executor needs Ray: pip install "dd-bench[ray]" (or pip install -e ".[ray]" in a checkout)'
# Passed to every task: which plugins load, offline model loading, and the fault points a test arms (faults.py), as
# in the process that planned the grid. Per task, so they reach the workers also when the caller started Ray.
ENV_PASSED = ("DD_BENCH_LOAD_PLUGINS", "DD_BENCH_DISABLE_PLUGINS", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
              "HF_DATASETS_OFFLINE", "TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "DD_BENCH_KILL_AT",
              "DD_BENCH_FULL_AT")
CANCEL_WAIT_S = 60  # after a full disk: how long the driver waits for cancelled tasks to end
# How often the driver counts the adapt units and images the workers have finished (read from the shared work dir,
# so no worker reports anything): often enough for a bar, rarely enough that a large set's records cost little.
PROGRESS_EVERY_S = 10.0
AUTO_SHARD_BLOCKS = 16  # automatic sharding gives each shard at least this many blocks (1,024 images)


def require_ray():
    """The ray module, or a usage error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local cluster for this run; "auto": join the running cluster
    task_gpus: float | None = None  # GPUs per adapt / generation task; None: 1 when cells run on cuda, else 0
    classifier_gpus: float | None = None  # GPUs per classifier task; None: half of task_gpus (two share a GPU)
    task_cpus: float = 1.0
    max_retries: int = 2  # retries of a task whose worker died
    shard_images: int | None = None  # generation shards per set; None: automatic (large sets on several GPUs)
    init: dict = field(default_factory=dict)  # extra ray.init arguments for a local cluster (num_cpus, num_gpus)


# ---- tasks (run on workers) ------------------------------------------------------------------------------------

def _cell(spec_json: dict, dataset, recorded: dict | None = None) -> Cell:
    from ..models.loading import quiet_libraries
    from ..spec import CellSpec
    from .build import build_cell

    quiet_libraries()
    return build_cell(CellSpec.model_validate(spec_json), dataset=dataset, recorded=recorded)


def _context(cell: Cell):
    from ..context import CellContext, shots_for
    from .cell import DTYPES

    return CellContext(spec=cell.spec, config=cell.method_config, dataset=cell.dataset,
                       fewshot=shots_for(cell.method, cell.fewshot), device=cell.spec.runtime["device"],
                       dtype=DTYPES[cell.spec.precision])


def adapt_task(spec_json: dict, dataset, units: list[str]) -> int:
    """Make some adapt units of a cell's set; returns how many were made here."""
    from . import stages

    cell = _cell(spec_json, dataset)
    keys = artifact_keys(cell)
    folder = WorkDir(cell.spec.work_dir).adapt(cell.spec.method, keys["adapt"])
    return stages.adapt(cell.method, _context(cell), folder, only=units)[1]


def shard_task(spec_json: dict, dataset, shard: int, shards: int, *adapted) -> dict:
    """Make one id range of a cell's generated set (after every adapt task: `adapted` are their results)."""
    from . import stages

    cell = _cell(spec_json, dataset)
    keys, workdir, ctx = artifact_keys(cell), WorkDir(cell.spec.work_dir), _context(cell)
    lora_files, _ = stages.adapt(cell.method, ctx, workdir.adapt(cell.spec.method, keys["adapt"]))
    images = stages.plan_images(cell.method, ctx, workdir.generated(cell.spec.method, keys["generate"]), lora_files)
    roots = {"work_dir": workdir.root, "data_root": cell.spec.data_root}
    report = images.make(stages.engine_factory(cell.method, ctx, images, lora_files,
                                               cell.spec.runtime["batch_size"], roots),
                         cell.method, blocks=shard_blocks(images.blocks, shard, shards))
    return {"shard": shard, "images": report.images, "reused": report.reused, "seconds": report.seconds}


def cell_task(spec_json: dict, dataset, argv: list[str], recorded: dict, *upstream) -> tuple[dict, dict]:
    """The whole cell (its set already made by the upstream tasks): (outcome fields, result record). argv and
    recorded (where the planner found each checkpoint) come from the driver, for the record."""
    from .cell import compute_cell
    from .events import Reporter

    cell = _cell(spec_json, dataset, recorded)
    outcome, record = compute_cell(cell, WorkDir(cell.spec.work_dir), Reporter(), argv=argv)
    return {"top1": outcome.top1, "seconds": outcome.seconds}, record


def shard_blocks(blocks: list, shard: int, shards: int) -> list:
    """The blocks of shard `shard` of `shards`: contiguous id ranges, as even as the block count allows."""
    n = len(blocks)
    return blocks[shard * n // shards:(shard + 1) * n // shards]


# ---- the driver ------------------------------------------------------------------------------------------------

class SetFiles(NamedTuple):
    """Where a submitted set's finished work shows up in the work dir."""

    adapt_folder: Path | None  # its adapt units' records (None: no adapt units)
    units: list[str]
    folder: Path  # the generated set
    planned: int  # its images, as the method's cost() counts them


class RayExecutor:
    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()

    def run(self, cells: list[Cell], workdir: WorkDir, store: ResultsStore, reporter: Reporter) -> GridOutcome:
        ray = require_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.options.address, include_dashboard=False, logging_level=logging.WARNING,
                     **self.options.init)
        try:
            return _Run(ray, self.options, cells, workdir, store, reporter).go()
        finally:
            if started:
                ray.shutdown()


class _Run:
    def __init__(self, ray, options: RayOptions, cells, workdir: WorkDir, store: ResultsStore, reporter: Reporter):
        self.ray, self.options, self.cells = ray, options, cells
        self.workdir, self.store, self.reporter = workdir, store, reporter
        cuda = any(c.spec.runtime.get("device", "cpu").startswith("cuda") for c in cells)
        self.task_gpus = options.task_gpus if options.task_gpus is not None else (1.0 if cuda else 0.0)
        self.classifier_gpus = (options.classifier_gpus if options.classifier_gpus is not None
                                else self.task_gpus / 2)
        self.results: dict[int, CellOutcome] = {}
        self.datasets: dict[str, object] = {}
        self.claims: dict[int, object] = {}
        self.upstream: list = []  # every adapt and generation task submitted (cancelled if the disk fills)
        self.stopped: str | None = None  # why the grid stopped early (a full disk), if it did
        self.made: list[SetFiles] = []  # every set submitted, for the progress counts
        self.images_seen: dict[Path, int] = {}  # images recorded so far, per set folder
        env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
        self.runtime_env = {"env_vars": env} if env else None

    # resources --------------------------------------------------------------------------------------------------
    def check_feasible(self) -> int:
        """Fail fast when no node can run a task; returns how many GPU tasks the cluster runs at once."""
        nodes = [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]
        asks = {"an adapt/generation task": {"CPU": self.options.task_cpus, "GPU": self.task_gpus},
                "a classifier task": {"CPU": self.options.task_cpus, "GPU": self.classifier_gpus}}
        for what, ask in asks.items():
            if not any(all(node.get(r, 0.0) >= need for r, need in ask.items() if need) for node in nodes):
                have = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes) or "no nodes"
                raise UsageError(f"no node of the Ray cluster can run {what} "
                                 f"({ask['CPU']:g} CPU, {ask['GPU']:g} GPU); its nodes have: {have}. Start workers "
                                 f"with GPUs (ray start --num-gpus N), or ask for less (task_gpus / classifier_gpus)")
        per_node = [min(n.get("GPU", 0.0) // self.task_gpus if self.task_gpus else float("inf"),
                        n.get("CPU", 0.0) // self.options.task_cpus) for n in nodes]
        return max(1, int(sum(per_node)))

    def remote(self, fn, gpus: float):
        return self.ray.remote(fn).options(num_cpus=self.options.task_cpus, num_gpus=gpus,
                                           max_retries=self.options.max_retries, runtime_env=self.runtime_env)

    def dataset_ref(self, cell: Cell):
        key = cell.spec.inputs["dataset"]
        if key not in self.datasets:
            self.datasets[key] = self.ray.put((cell.dataset, cell.provenance.get("dataset", {})))
        return self.datasets[key]

    # the DAG ----------------------------------------------------------------------------------------------------
    def submit(self, indices: list[int], slots: int) -> dict:
        """Submit the tasks of these cells; returns {classifier task ref: cell index}."""
        adapt, shard, cell = (self.remote(adapt_task, self.task_gpus), self.remote(shard_task, self.task_gpus),
                              self.remote(cell_task, self.classifier_gpus))
        sets: dict[str, list] = {}  # generate key -> refs every cell of that set waits for
        out = {}
        for i in indices:
            c = self.cells[i]
            self.reporter.cell_started(i, len(self.cells), c.spec)
            try:
                spec_json, data = c.spec.model_dump(mode="json"), self.dataset_ref(c)
                keys = artifact_keys(c)
                if "generate" in keys and keys["generate"] not in sets:
                    sets[keys["generate"]] = self.set_tasks(c, spec_json, data, adapt, shard, slots)
                upstream = sets.get(keys.get("generate"), [])
                recorded = {k: c.provenance[k] for k in ("models",) if k in c.provenance}
                out[cell.remote(spec_json, data, list(sys.argv), recorded, *upstream)] = i
            except Exception as e:  # noqa: BLE001 - a method failing to plan its tasks fails its cell only
                log.error("%s failed before its tasks were submitted: %s", c.spec.label(), e)
                self.finish(i, CellOutcome(c.spec, "failed", error=f"{type(e).__name__}: {e}"))
        return out

    def set_tasks(self, c: Cell, spec_json: dict, data, adapt, shard, slots: int) -> list:
        ctx = _context(c)
        units = c.method.adapt_units(ctx)
        chunks = [units[j::min(len(units), slots)] for j in range(min(len(units), slots))] if units else []
        adapted = [adapt.remote(spec_json, data, chunk) for chunk in chunks]
        shards = self.options.shard_images or self.auto_shards(c, ctx, units, slots)
        made = [shard.remote(spec_json, data, s, shards, *adapted) for s in range(shards)]
        self.upstream += adapted + made
        self.track(c, units)
        return made

    def track(self, c: Cell, units: list[str]) -> None:
        """Remember where a set's finished work will show up, once per set, for the progress counts."""
        keys = artifact_keys(c)
        folder = self.workdir.generated(c.spec.method, keys["generate"])
        if any(s.folder == folder for s in self.made):  # a deferred cell's set, submitted again
            return
        adapt_folder = self.workdir.adapt(c.spec.method, keys["adapt"]) if units else None
        self.made.append(SetFiles(adapt_folder, units, folder, planned_images(c) or 0))

    def auto_shards(self, c: Cell, ctx, units: list[str], slots: int) -> int:
        """One shard per AUTO_SHARD_BLOCKS blocks, at most one per GPU slot."""
        try:
            requests = c.method.plan(ctx)
        except Exception:  # noqa: BLE001 - this method plans from its adapt stage's output (captions), not made yet
            # Every slot gets a shard; a shard whose id range turns out empty ends at once.
            return slots
        blocks = -(-len(requests) // BLOCK)
        return max(1, min(blocks // AUTO_SHARD_BLOCKS, slots))

    def go(self) -> GridOutcome:
        slots = self.check_feasible()
        pending, deferred = [], []
        for i, c in enumerate(self.cells):
            key = c.spec.key()
            if self.store.has(key):
                self.skipped(i)
                continue
            claim = try_claim(self.workdir.cell_claim(key), what=c.spec.label())
            if claim is None:
                deferred.append(i)
            else:
                self.claims[i] = claim
                pending.append(i)
        self.wait(self.submit(pending, slots))
        for i in deferred:  # cells another process is running: by now usually in the store
            if self.stopped:
                break
            key = self.cells[i].spec.key()
            claim = claim_or_wait(self.workdir.cell_claim(key), lambda k=key: self.store.has(k),
                                  what=self.cells[i].spec.label())
            if claim is None:
                self.skipped(i)
            else:
                self.claims[i] = claim
                self.wait(self.submit([i], slots))
        for i in [i for i in self.claims if i not in self.results]:  # cells the full disk left not run
            self.claims.pop(i).release()
        return GridOutcome([self.results[i] for i in sorted(self.results)], stopped=self.stopped)

    def wait(self, refs: dict) -> None:
        started = {ref: time.perf_counter() for ref in refs}
        left = list(refs)
        while left and not self.stopped:
            ready, left = self.ray.wait(left, num_returns=1, timeout=PROGRESS_EVERY_S)
            self.report_progress()
            if not ready:
                continue
            ref = ready[0]
            i = refs[ref]
            c = self.cells[i]
            try:
                fields, record = self.ray.get(ref)
                store_record(self.store, record)
                result = CellOutcome(c.spec, "done", top1=fields["top1"], seconds=fields["seconds"])
            except Exception as e:  # noqa: BLE001 - one cell's failure must not stop the grid
                error = getattr(e, "cause", None) or e
                if is_disk_full(error):  # every later task needs the same disk: stop, saying what is free and needed
                    self.stop_for_full_disk(i, left)
                else:
                    log.error("%s failed: %s", c.spec.label(), e)
                result = CellOutcome(c.spec, "failed", seconds=time.perf_counter() - started[ref],
                                     error=f"{type(error).__name__}: {error}")
            self.finish(i, result)

    def report_progress(self) -> None:
        """The grid's adapt units and images finished so far, over every set submitted, as the reporter's bars (the
        local executor's per-cell stages run inside workers here, so the driver counts their files instead)."""
        units = sum(len(s.units) for s in self.made)
        if units:
            done = sum(1 for s in self.made for u in s.units
                       if unit_record(s.adapt_folder, u).exists())
            self.reporter.progress("adapt units, all sets", done, units)
        images = sum(s.planned for s in self.made)
        if images:
            for s in self.made:  # a whole set is not read again (a paper set's records are megabytes)
                if self.images_seen.get(s.folder, 0) < s.planned:
                    self.images_seen[s.folder] = min(s.planned, recorded_images(s.folder))
            self.reporter.progress("images, all sets", sum(self.images_seen.get(s.folder, 0) for s in self.made),
                                   images)

    def stop_for_full_disk(self, i: int, left: list) -> None:
        """Cancel every task still queued or running (a running one is interrupted: its claims are released and
        what it finished stays on disk for the rerun), and say what the rest of the grid needs."""
        rest = [c for j, c in enumerate(self.cells) if j == i or j not in self.results]
        self.stopped = disk_full_message(rest, self.workdir)
        outstanding = left + self.upstream
        for ref in outstanding:
            self.ray.cancel(ref)
        self.ray.wait(outstanding, num_returns=len(outstanding), timeout=CANCEL_WAIT_S)

    def finish(self, i: int, result: CellOutcome) -> None:
        claim = self.claims.pop(i, None)
        if claim is not None:
            claim.release()
        self.results[i] = result
        self.reporter.cell_finished(result)

    def skipped(self, i: int) -> None:
        self.reporter.cell_started(i, len(self.cells), self.cells[i].spec)
        self.results[i] = CellOutcome(self.cells[i].spec, "skipped")
        self.reporter.cell_finished(self.results[i])
