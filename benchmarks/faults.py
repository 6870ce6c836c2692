"""The fault matrix on the demo: `dd-bench run` killed with SIGKILL at 50+ named points, then rerun to the end.

    python benchmarks/faults.py [--out faults.json]     # about 15 minutes on 2 idle cores

Each rerun is a fresh process that resumes what the previous kill left and is itself killed at the next point
(DD_BENCH_KILL_AT, see datadream_bench/faults.py); the last rerun is not killed. The work dir must then hold the
same images, LoRAs and classifier states (bytes), manifests and store rows (metrics) as an uninterrupted run, no
image recorded twice and no temporary file. tests/test_faults.py runs the same machinery on the tiny profile.
"""

from __future__ import annotations

import argparse
import atexit
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


# What a `dd-bench run` imports before it does anything. A warm process imports it once, so that each run forked
# from it starts in a fraction of a second instead of the ~5 s of a fresh interpreter.
WARM_MODULES = ("torch", "diffusers", "transformers", "peft", "datadream_bench.cli.main", "datadream_bench.runner.cell",
                "datadream_bench.runner.grid", "datadream_bench.runner.executor", "datadream_bench.faults", "sklearn.datasets")


class Zygote:
    """A fresh interpreter that imports WARM_MODULES and then only forks: each child is a real process running the
    real CLI entry point, killed by a real SIGKILL at its fault point. Children are forked from this clean process,
    never from the caller (a test process may hold Ray's gRPC threads or torch's thread pools, which a fork does
    not survive). It reads one JSON request per line on stdin and answers one line each:
    {"start": ...} -> {"pid": N}; {"wait": N, "timeout": s} -> {"returncode": c} or {"timeout": true}."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--zygote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the fault-matrix zygote did not start: {ready!r}")

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError("the fault-matrix zygote died")
        return json.loads(answer)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)


_zygote: Zygote | None = None


def warm_up() -> None:
    """Start the zygote that forked runs come from (once per process; it ends when this process does)."""
    global _zygote
    if _zygote is None or _zygote.proc.poll() is not None:
        _zygote = Zygote()
        atexit.register(_zygote.close)


def serve() -> None:
    """The zygote's side (python benchmarks/faults.py --zygote)."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "start" in request:
            pid = os.fork()
            if pid == 0:
                _child(**request["start"])  # never returns
            answer = {"pid": pid}
        else:
            answer = _reap(request["wait"], request["timeout"])
        print(json.dumps(answer), flush=True)


def _reap(pid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status)}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timeout": True}
        time.sleep(0.05)


def _child(args: list[str], environ: dict, cwd: str, out: str, err: str) -> None:
    code = 70
    try:
        os.chdir(cwd)
        for fd, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY), fd)
        sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
        sys.stdin = open(os.devnull)
        os.environ.clear()
        os.environ.update(environ)
        from datadream_bench import faults
        from datadream_bench.cli.main import app

        faults.arm()
        try:
            app(args, prog_name="dd-bench")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - report it in the child's stderr, exit with its own code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Forked:
    """A `dd-bench run` with these arguments and variables in a child of the zygote (call warm_up() first), started
    at once; wait() for its CompletedProcess."""

    def __init__(self, args: list[str], work: Path, kill_at: str | None = None, **env: str):
        from datadream_bench import faults

        self.args = ["dd-bench", "run", *args]
        self.files = [tempfile.NamedTemporaryFile(prefix="dd-bench-fault-", delete=False) for _ in range(2)]
        environ = {k: v for k, v in os.environ.items() if k not in (faults.ENV, faults.FULL_ENV)}
        environ.update(env)
        if kill_at:
            environ[faults.ENV] = kill_at
        start = {"args": ["run", *args, "-w", str(work), "--json"], "environ": environ, "cwd": os.getcwd(),
                 "out": self.files[0].name, "err": self.files[1].name}
        self.pid = _zygote.ask({"start": start})["pid"]

    def wait(self, timeout: float = 900) -> subprocess.CompletedProcess:
        answer = _zygote.ask({"wait": self.pid, "timeout": timeout})
        texts = []
        for f in self.files:
            texts.append(Path(f.name).read_bytes().decode(errors="replace"))
            f.close()
            os.unlink(f.name)
        if answer.get("timeout"):
            raise subprocess.TimeoutExpired(self.args, timeout, *texts)
        return subprocess.CompletedProcess(self.args, answer["returncode"], *texts)


def forked_dd_bench(args: list[str], work: Path, kill_at: str | None = None, timeout: float = 900,
                    **env: str) -> subprocess.CompletedProcess:
    """The same as dd_bench, in a child forked from the zygote (see Forked); call warm_up() first."""
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
    if sys.argv[1:] == ["--zygote"]:
        serve()
    else:
        sys.exit(main())
