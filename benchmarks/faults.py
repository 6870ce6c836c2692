"""The fault matrix on the demo: `dd-bench run` killed with SIGKILL at 50+ named points, then rerun to the end.

    python benchmarks/faults.py [--out faults.json]     # about 15 minutes on 2 idle cores

Each rerun is a fresh process that resumes what the previous kill left and is itself killed at the next point
(DD_BENCH_KILL_AT, see datadream_bench/faults.py); the last rerun is not killed. The work dir must then hold the
same images, LoRAs and classifier states (bytes), manifests and store rows (metrics) as an uninterrupted run, no
image recorded twice and no temporary file. tests/test_faults.py runs the same machinery on the tiny profile.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

KILLED = -9  # the return code of a process that died of SIGKILL


def dd_bench(args: list[str], work: Path, kill_at: str | None = None, timeout: float = 900,
             **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DD_BENCH_KILL_AT", "DD_BENCH_FULL_AT")}
    full_env.update(env)
    if kill_at:
        full_env["DD_BENCH_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "datadream_bench", "run", *args, "-w", str(work), "--json"],
                          capture_output=True, text=True, env=full_env, timeout=timeout)


# What a `dd-bench run` imports before it does anything; a warm parent imports it once, so that each forked run
# starts in a fraction of a second instead of the ~5 s of a fresh interpreter.
WARM_MODULES = ("torch", "diffusers", "transformers", "peft", "datadream_bench.cli.main", "datadream_bench.runner.cell",
                "datadream_bench.runner.grid", "datadream_bench.runner.executor", "datadream_bench.faults", "sklearn.datasets")


def warm_up() -> None:
    for name in WARM_MODULES:
        importlib.import_module(name)


class Forked:
    """A `dd-bench run` in a child forked from this (warmed-up) process: a real process running the real CLI entry
    point with these arguments and variables, killed by a real SIGKILL at its fault point; only the imports are
    shared with the parent. Used where dozens of runs must fit a test's budget."""

    def __init__(self, args: list[str], work: Path, kill_at: str | None = None, **env: str):
        from datadream_bench import faults
        from datadream_bench.cli.main import app

        self.args = ["dd-bench", "run", *args]
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into the caller's code
            code = 70
            try:
                os.dup2(self.out.fileno(), 1)
                os.dup2(self.err.fileno(), 2)
                sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
                for name in (faults.ENV, faults.FULL_ENV):
                    os.environ.pop(name, None)
                os.environ.update(env)
                if kill_at:
                    os.environ[faults.ENV] = kill_at
                faults.arm()
                try:
                    app(["run", *args, "-w", str(work), "--json"], prog_name="dd-bench")
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # noqa: BLE001 - report it in the child's stderr, exit with its own code
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def wait(self, timeout: float = 900) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.05)
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
            f.close()
        return subprocess.CompletedProcess(self.args, os.waitstatus_to_exitcode(status), *texts)


def forked_dd_bench(args: list[str], work: Path, kill_at: str | None = None, timeout: float = 900,
                    **env: str) -> subprocess.CompletedProcess:
    """The same as dd_bench, in a child forked from this process (see Forked); call warm_up() first."""
    return Forked(args, work, kill_at, **env).wait(timeout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artifacts(work: Path) -> dict[str, str]:
    """sha256 of every generated image, LoRA and classifier state, by path in the work dir."""
    out = {}
    for top, suffix in (("generated", ".png"), ("adapt", ".safetensors"), ("classifier", ".safetensors")):
        for p in (work / top).rglob(f"*{suffix}"):
            out[p.relative_to(work).as_posix()] = digest(p)
    return out


def manifests(work: Path) -> dict[str, list[dict]]:
    """Each generated set's manifest records (time fields left out), in file order."""
    out = {}
    for p in (work / "generated").rglob("manifest.jsonl"):
        records = []
        for line in p.read_text().splitlines():
            rec = json.loads(line)
            records.append({k: v for k, v in rec.items() if not k.endswith("seconds")})
        out[p.relative_to(work).as_posix()] = records
    return out


def store_rows(work: Path) -> dict[str, dict]:
    """cell key -> what the cell measured (top-1 and every metric); timings and the environment left out."""
    with sqlite3.connect(work / "results.sqlite") as db:
        rows = db.execute("SELECT cell_key, top1, record FROM results").fetchall()
    return {key: {"top1": top1, "metrics": json.loads(record)["metrics"]} for key, top1, record in rows}


def leftovers(work: Path) -> list[str]:
    """Temporary files (a write that never finished) anywhere in the work dir."""
    return sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file() and ".tmp" in p.name)


def differences(reference: Path, work: Path) -> list[str]:
    """Everything in which `work` differs from the uninterrupted `reference` run; empty when they agree."""
    problems = []
    ref_art, art = artifacts(reference), artifacts(work)
    if set(ref_art) != set(art):
        problems.append(f"artifact files differ: only in the reference {sorted(set(ref_art) - set(art))[:5]}, only "
                        f"after the kills {sorted(set(art) - set(ref_art))[:5]}")
    changed = sorted(k for k in set(ref_art) & set(art) if ref_art[k] != art[k])
    if changed:
        problems.append(f"{len(changed)} artifacts differ in their bytes, e.g. {changed[:5]}")
    for name in changed:
        if name.endswith(".png"):  # how far: a grey level in a pixel (kernels of another batch size) or more
            a, b = (np.asarray(Image.open(root / name), dtype=int) for root in (reference, work))
            problems.append(f"{name}: {int((a != b).any(-1).sum())} of {a.shape[0] * a.shape[1]} pixels differ, "
                            f"by up to {int(np.abs(a - b).max())} grey levels")
    ref_man, man = manifests(reference), manifests(work)
    for path, records in man.items():
        ids = Counter(r["id"] for r in records)
        doubled = [i for i, n in ids.items() if n > 1]
        if doubled:
            problems.append(f"{path}: {len(doubled)} image ids recorded more than once, e.g. {doubled[:3]}")
        if sorted(map(json.dumps, records)) != sorted(map(json.dumps, ref_man.get(path, []))):
            problems.append(f"{path}: its records differ from the reference's")
    if set(ref_man) != set(man):
        problems.append(f"manifests differ: {sorted(set(ref_man) ^ set(man))}")
    ref_rows, rows = store_rows(reference), store_rows(work)
    if ref_rows != rows:
        problems.append(f"store rows differ: reference {ref_rows}, after the kills {rows}")
    left = leftovers(work)
    if left:
        problems.append(f"temporary files left behind: {left[:5]}")
    return problems


# ---- the demo matrix: python benchmarks/faults.py ----

# The demo grid cut at 50+ points: DataDream class-wise (a LoRA per class) and DISEF (captions, filter), one seed,
# both settings. The demo's images per class and steps, so each point falls inside real work.
DEMO_GRID = ["-m", "datadream-cls,disef", "--seeds", "0"]


def demo_chain() -> list[str]:
    """Kill points in the order the demo grid reaches them, each counted in the process that resumes there."""
    per_cell = ["fewshot.draw:1", "fewshot.saved:1"]
    datadream = [*per_cell, "adapt.unit:1", "adapt.saved:1", "adapt.unit:2", "adapt.saved:2", "adapt.unit:2",
                 "adapt.saved:1", "adapt.unit:2",
                 "generate.batch:1", "generate.write:1", "generate.recorded:1", "generate.write:9",
                 "generate.batch:3", "generate.recorded:3", "generate.write:20", "generate.batch:5",
                 "generate.recorded:2", "train.start:1", "train.step:1", "train.step:40", "train.step:120",
                 "train.saved:1", "evaluate.start:1", "store.write:1"]
    datadream_real = ["train.start:1", "train.step:1", "train.step:60", "train.saved:1", "store.write:1",
                      "store.written:1"]
    disef = [*per_cell, "adapt.unit:1", "adapt.saved:2", "adapt.unit:3", "filter.judged:1",
             "generate.write:1", "filter.judged:4", "generate.batch:3", "generate.recorded:2",
             "generate.write:12", "filter.judged:10", "generate.recorded:5", "train.step:30", "train.saved:1",
             "evaluate.start:1", "store.write:1"]
    disef_real = ["train.step:1", "train.step:50", "evaluate.start:1", "store.write:1"]
    return datadream + datadream_real + disef + disef_real


def run_chain(grid: list[str], chain: list[str], reference: Path, work: Path, log=lambda line: print(line, flush=True),
              runner=dd_bench) -> dict:
    """The uninterrupted run, then one rerun per kill point, then a last rerun; what differs, and the counts.
    runner: dd_bench (a fresh interpreter per run) or forked_dd_bench (after warm_up())."""
    t = time.perf_counter()
    if not (reference / "results.sqlite").exists():  # else made already (shared by several checks)
        ran = runner(grid, reference)
        if ran.returncode != 0:
            raise RuntimeError(f"the uninterrupted run failed:\n{ran.stderr[-3000:]}")
        log(f"uninterrupted run: {time.perf_counter() - t:.0f} s")
    killed, not_reached = [], []
    for point in chain:
        t = time.perf_counter()
        ran = runner(grid, work, kill_at=point)
        (killed if ran.returncode == KILLED else not_reached).append(point)
        log(f"{point}: {'killed' if ran.returncode == KILLED else f'NOT killed (exit {ran.returncode})'} "
            f"after {time.perf_counter() - t:.0f} s")
    ran = runner(grid, work)
    problems = differences(reference, work) if ran.returncode == 0 else [f"the last rerun failed: {ran.stderr[-3000:]}"]
    return {"points": len(chain), "killed": len(killed), "not_reached": not_reached,
            "points_by_name": dict(Counter(p.split(":")[0] for p in killed)), "cells": len(store_rows(work)),
            "identical": not problems, "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    scratch = Path(args.work or tempfile.mkdtemp(prefix="dd-bench-faults-"))
    chain = demo_chain()
    result = run_chain(DEMO_GRID, chain, scratch / "reference", scratch / "killed")
    print(f"\n{result['killed']} of {result['points']} kill points reached; rerun identical to the uninterrupted "
          f"run: {'yes' if result['identical'] else 'NO'} ({result['cells']} cells, one row each)")
    for problem in result["problems"]:
        print(f"  {problem}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0 if result["identical"] and not result["not_reached"] else 1


if __name__ == "__main__":
    sys.exit(main())
