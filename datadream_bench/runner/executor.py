"""Where a grid's cells run. The local executor runs them one after another in this process; the Ray executor
(runner.ray_executor) spreads their stages over a cluster. Both keep the same rules: one claim per cell in the work
dir, finished cells skipped, one failing cell never stops the others, and one process writes the store."""

from __future__ import annotations

import logging
import time
import traceback
from typing import Protocol

from ..diskspace import disk_full_message, is_disk_full
from ..errors import UsageError
from ..store import ResultsStore
from .cell import Cell, run_cell
from .claims import claim_or_wait, try_claim
from .events import CellOutcome, Reporter
from .grid import GridOutcome
from .workdir import WorkDir

log = logging.getLogger("dd_bench")


class Executor(Protocol):
    def run(self, cells: list[Cell], workdir: WorkDir, store: ResultsStore, reporter: Reporter) -> GridOutcome:
        ...


def make_executor(name: str, ray_address: str | None = None, shard_images: int | None = None):
    """The executor a `run` asks for; a usage error for an unknown one, for Ray options without Ray, or for Ray
    when it is not installed (with how to install it)."""
    if name == "local":
        if ray_address is not None or shard_images is not None:
            raise UsageError("--ray-address and --shard-images go with --executor ray")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor, RayOptions, require_ray

        require_ray()
        if shard_images is not None and shard_images < 1:
            raise UsageError(f"--shard-images must be at least 1, got {shard_images}")
        return RayExecutor(RayOptions(address=ray_address, shard_images=shard_images))
    raise UsageError(f"unknown executor {name!r}; valid: local, ray")


def failure(cell: Cell, error: BaseException, seconds: float) -> CellOutcome:
    return CellOutcome(cell.spec, "failed", seconds=seconds, error=f"{type(error).__name__}: {error}")


class LocalExecutor:
    """Each cell in turn, in this process.

    Each cell runs under a claim in the work dir: a cell that another process (a second `dd-bench run` on the same
    work dir) is running is put off to the end, and by then it is usually in the store; else this process waits
    for it, or runs it when that process is gone.
    """

    def run(self, cells: list[Cell], workdir: WorkDir, store: ResultsStore, reporter: Reporter) -> GridOutcome:
        results: dict[int, CellOutcome] = {}
        deferred: list[int] = []
        stopped: list[str] = []  # why the grid stopped early (a full disk), if it did

        def execute(i: int, claim) -> None:
            cell = cells[i]
            reporter.cell_started(i, len(cells), cell.spec)
            start = time.perf_counter()
            try:
                with claim:
                    result = run_cell(cell, workdir, store, reporter)
            except Exception as e:  # noqa: BLE001 - one cell's failure must not stop the grid
                if is_disk_full(e):  # every later cell needs the same disk: stop, saying what is free and needed
                    rest = [c for j, c in enumerate(cells) if j == i or j not in results]
                    stopped.append(disk_full_message(rest, workdir))
                else:
                    log.error("%s failed:\n%s", cell.spec.label(), traceback.format_exc())
                result = failure(cell, e, time.perf_counter() - start)  # (a full disk: names the file)
            results[i] = result
            reporter.cell_finished(result)

        def skipped(i: int) -> None:
            reporter.cell_started(i, len(cells), cells[i].spec)
            results[i] = CellOutcome(cells[i].spec, "skipped")
            reporter.cell_finished(results[i])

        for i, cell in enumerate(cells):
            if stopped:
                break
            key = cell.spec.key()
            if store.has(key):
                skipped(i)
                continue
            claim = try_claim(workdir.cell_claim(key), what=cell.spec.label())
            if claim is None:
                deferred.append(i)
            else:
                execute(i, claim)
        for i in deferred:
            if stopped:
                break
            key = cells[i].spec.key()
            claim = claim_or_wait(workdir.cell_claim(key), lambda k=key: store.has(k), what=cells[i].spec.label())
            if claim is None:
                skipped(i)
            else:
                execute(i, claim)
        return GridOutcome([results[i] for i in sorted(results)], stopped=stopped[0] if stopped else None)
