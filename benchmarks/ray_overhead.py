"""What the Ray executor adds per task, on a local cluster: start-up, an empty task's round trip, the throughput of
empty tasks, and rebuilding a cell from its spec on a worker (build_cell) against doing it in this process.

    python benchmarks/ray_overhead.py                 # about a minute on 2 cores
    python benchmarks/ray_overhead.py --out ray.json  # also write the numbers as JSON

Both sides of the cell comparison build the same cell (checked by its key and its few-shot draw).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def empty() -> None:
    return None


def rebuild(spec_json: dict, dataset) -> tuple[str, str, float]:
    """On a worker: the cell of a spec, as a task does it (registry, config, few-shot draw)."""
    from datadream_bench.runner.build import build_cell
    from datadream_bench.spec import CellSpec

    t = time.perf_counter()
    cell = build_cell(CellSpec.model_validate(spec_json), dataset=dataset)
    return cell.spec.key(), cell.fewshot.fingerprint(), time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="empty tasks for the throughput figure")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each timed round trip (median counts)")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args()

    import ray

    from datadream_bench.plugins import load_registry
    from datadream_bench.runner.build import build_cell
    from datadream_bench.testing import tiny_cells

    work = Path(tempfile.mkdtemp(prefix="dd-bench-ray-bench-"))
    cell = tiny_cells(["zero-shot-sd"], work, load_registry(), settings=["synthetic"])[0]
    spec_json = cell.spec.model_dump(mode="json")
    dataset = (cell.dataset, cell.provenance.get("dataset", {}))

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    init_s = time.perf_counter() - t
    try:
        remote_empty = ray.remote(empty).options(num_cpus=1)
        ray.get(remote_empty.remote())  # a worker started, so the round trips below reuse one
        round_trip_s = median_time(lambda: ray.get(remote_empty.remote()), args.rounds)
        direct_s = median_time(empty, args.rounds)
        t = time.perf_counter()
        ray.get([remote_empty.remote() for _ in range(args.tasks)])
        throughput = args.tasks / (time.perf_counter() - t)

        data_ref = ray.put(dataset)
        remote_rebuild = ray.remote(rebuild).options(num_cpus=1)
        first = ray.get(remote_rebuild.remote(spec_json, data_ref))  # the worker's first cell: imports, plugins
        warm = [ray.get(remote_rebuild.remote(spec_json, data_ref)) for _ in range(5)]
        task_rebuild_s = statistics.median(
            median_time(lambda: ray.get(remote_rebuild.remote(spec_json, data_ref)), 1) for _ in range(args.rounds))
        local = build_cell(cell.spec, dataset=dataset)
        local_rebuild_s = median_time(lambda: build_cell(cell.spec, dataset=dataset), args.rounds)
        same = all(r[:2] == (local.spec.key(), local.fewshot.fingerprint()) for r in [first, *warm])
    finally:
        ray.shutdown()

    numbers = {
        "ray_init_s": round(init_s, 3),
        "empty_task_round_trip_ms": round(round_trip_s * 1e3, 3),
        "empty_call_in_process_ms": round(direct_s * 1e3, 6),
        "empty_tasks_per_s": round(throughput, 1),
        "cell_rebuild_first_task_on_a_worker_s": round(first[2], 3),
        "cell_rebuild_task_round_trip_ms": round(task_rebuild_s * 1e3, 2),
        "cell_rebuild_in_process_ms": round(local_rebuild_s * 1e3, 2),
        "same_cell_on_both_sides": same,
    }
    width = max(map(len, numbers))
    for k, v in numbers.items():
        print(f"{k:<{width}}  {v}")
    if args.out:
        args.out.write_text(json.dumps(numbers, indent=1))
    if not same:
        sys.exit("the worker rebuilt a different cell")


if __name__ == "__main__":
    main()
