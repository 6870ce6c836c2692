"""`dd-bench quality`: measure every synthetic set in a work dir (once each; later calls read the cached records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .console import err, fail_usage, labelled, out
from .leaderboard_cmd import store_path


def quality(
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
    = Path("dd-bench-work"),
    method: Annotated[Optional[str], typer.Option(help="only this method")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    seed: Annotated[Optional[int], typer.Option(help="only this seed")] = None,
    device: Annotated[Optional[str], typer.Option(help="device for the CLIP features; default cuda if "
                                                  "available")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the quality records as JSON on stdout")] = False,
) -> None:
    """Quality of each generated set in the CLIP feature space of its cell: Fréchet distance, precision, recall,
    density, coverage, Vendi diversity, memorisation of the shots and class consistency."""
    from ..quality.compute import QualityUnavailable, set_quality
    from ..quality.table import terminal_cells, terminal_table
    from ..runner.workdir import WorkDir
    from ..store import ResultsStore
    from .progress import RichReporter

    try:
        store = ResultsStore(store_path(work_dir))
    except UsageError as e:
        fail_usage(e)
    workdir = WorkDir(work_dir)
    records, seen = [], set()
    for r in store.rows(with_record=True, method=method, dataset=dataset, seed=seed):
        rec = r["record"]
        set_key = ((rec.get("artifacts") or {}).get("generate"), (rec["spec"].get("inputs") or {}).get("clip"))
        if set_key[0] and set_key not in seen:  # synthetic and synthetic+real share their set: measured once
            seen.add(set_key)
            records.append(rec)
    results, problems = [], []
    with RichReporter() as reporter:
        for rec in records:
            try:
                results.append(set_quality(workdir, rec, store, device, reporter.progress))
            except QualityUnavailable as e:
                problems.append(f"{rec['spec']['method']} seed {rec['spec']['seed']}: {e}")
    for p in problems:
        err.print(labelled("not measured", p, "yellow"), highlight=False)
    if as_json:
        print(json.dumps(results, indent=1, sort_keys=True))
        return
    several = len({q["dataset"] for q in results}) > 1
    table = terminal_table("quality of each generated set (--json: every measure, per class, the pool and the "
                           "judge)", ["method", *(["dataset"] if several else []), "seed"])
    for q in sorted(results, key=lambda q: (q["dataset"], q["method"], q["seed"])):
        table.add_row(q["method"], *([q["dataset"]] if several else []), str(q["seed"]),
                      *terminal_cells(q["summary"]))
    out.print(table)
