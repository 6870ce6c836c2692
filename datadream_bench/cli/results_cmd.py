"""`dd-bench results`: every finished cell, one row each with its key, as a table or for other tools (JSON lines,
CSV: load them into pandas, diff two work dirs). Mounted in cli.main as a single command."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .console import fail_usage, out

DEFAULT_WORK_DIR = Path("dd-bench-work")
COLUMNS = ("key", "method", "dataset", "shots", "seed", "setting", "classifier", "profile", "top1", "finished")


class Format(str, Enum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


def results(
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
    = DEFAULT_WORK_DIR,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table | jsonl (one JSON object per cell, with "
                                        "metrics and full spec) | csv (one line per cell, scalar metrics)")]
    = Format.table,
) -> None:
    """Every finished cell, one row each, with the key that `dd-bench show` takes."""
    from ..store import ResultsStore
    from ..store.merge import export_rows

    store_path = work_dir / "results.sqlite"
    if not store_path.is_file():
        fail_usage(f"no results store at {store_path}")
    try:
        rows = export_rows(ResultsStore(store_path))
    except UsageError as e:  # a damaged store
        fail_usage(e)
    if fmt == Format.jsonl:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
    elif fmt == Format.csv:
        metrics = sorted({m for r in rows for m, v in r["metrics"].items() if isinstance(v, (int, float, str))}
                         - set(COLUMNS))
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*COLUMNS, *metrics])
        for r in rows:
            writer.writerow([r[c] for c in COLUMNS] + [r["metrics"].get(m, "") for m in metrics])
    else:
        from rich.table import Table

        table = Table()
        for col in COLUMNS:
            table.add_column(col)
        for r in rows:
            table.add_row(r["key"][:10], r["method"], r["dataset"], str(r["shots"]), str(r["seed"]), r["setting"],
                          r["classifier"], r["profile"], f"{r['top1']:.1f}", r["finished"])
        out.print(table)
