"""`dd-bench datasets check`: read a dataset copy, validate it all, print the report and the fingerprint.

The report goes to stdout (a table, or JSON with --json); logs go to stderr. Invalid data exits with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..datasets.adapter import DatasetOptions
from ..datasets.check import prepare_dataset
from ..datasets.problems import DatasetInvalid
from ..errors import UsageError
from .console import err, fail_usage, out, print_error

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def datasets() -> None:
    """Check dataset copies: classes, splits, bad files, fingerprint."""


def _numbers(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{what} must be comma-separated integers, got {text!r}") from None


@app.command("check")
def check(
    dataset: Annotated[str, typer.Option(help="dataset key, e.g. eurosat (see `dd-bench list datasets`)")],
    data_root: Annotated[Optional[Path], typer.Option(help="the folder holding your datasets")] = None,
    shots: Annotated[str, typer.Option(help="shot counts to check against the smallest class, e.g. 1,4,16")] = "16",
    seeds: Annotated[str, typer.Option(help="few-shot seeds whose draws are checked")] = "0",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="drop unreadable files (counted) instead of failing")]
    = False,
    max_bad: Annotated[float, typer.Option(help="skip-bad cap: a fraction of rows if < 1, else a file count")]
    = 0.01,
    decode: Annotated[str, typer.Option(help="all: decode every image; fewshot: only the few-shot draws")] = "all",
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", "-o", help="dataset option KEY=VALUE (source, path, classes, class_map, protocol, ...)")] = None,
    work_dir: Annotated[Path, typer.Option(help="where HF copies are materialised")] = Path("dd-bench-work"),
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Validate a dataset copy before any GPU work: classes, splits, files, images, few-shot draws."""
    from ..plugins import load_registry

    try:
        extra = {}
        for item in option or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
            extra[key.strip()] = value.strip()
        adapter = load_registry().get("datasets", dataset)
        err.log(f"checking {dataset} under {extra.get('path') or data_root}")
        from .progress import RichReporter

        with RichReporter() as checking:  # a bar while the files are read and decoded
            manifest, report = prepare_dataset(
                adapter, DatasetOptions(data_root=data_root, work_dir=work_dir, extra=extra),
                shots=_numbers(shots, "shots"), seeds=_numbers(seeds, "seeds"), skip_bad=skip_bad, max_bad=max_bad,
                decode=decode, progress=checking.progress)
    except DatasetInvalid as e:
        report = dict(e.report) or {"dataset": dataset, "valid": False,
                                    "problems": [{"path": p.path, "reason": p.reason} for p in e.problems]}
        _print(report, as_json)
        print_error(f"{len(e.problems)} problem(s); the copy cannot be used as it is", label=f"{dataset}:")
        raise typer.Exit(2)
    except UsageError as e:
        fail_usage(e)
    _print(report, as_json)


def _print(report: dict, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report))
        return
    table = Table(title=f"dataset {report.get('dataset')}", show_header=False)
    for key in ("source", "root", "protocol", "classes", "expected_classes"):
        if key in report:
            table.add_row(key, str(report[key]))
    for split, n in (report.get("splits") or {}).items():
        coop = (report.get("coop_splits") or {}).get(split)
        table.add_row(f"{split} images", f"{n}" + (f"  (CoOp: {coop})" if coop else ""))
    for split, small in (report.get("smallest_class") or {}).items():
        table.add_row(f"smallest {split} class", f"{small['class']} ({small['images']})")
    skipped = report.get("skipped") or {}
    if report.get("skip_bad"):
        table.add_row("skipped (bad files)", f"{skipped.get('count', 0)} (cap {skipped.get('cap')}) "
                                             f"{skipped.get('by_split', {})}")
    table.add_row("checked", str(report.get("checked", "")))
    for note in report.get("notes", []):
        table.add_row("note", note)
    for seed, fps in (report.get("fewshot") or {}).items():
        table.add_row(f"few-shot seed {seed}", ", ".join(f"{k}-shot {fp}" for k, fp in fps.items()))
    table.add_row("valid", "yes" if report.get("valid") else "NO")
    if report.get("fingerprint"):
        table.add_row("fingerprint", report["fingerprint"])
    out.print(table)
    problems = report.get("problems") or []
    if problems:
        listing = Table(title=f"{len(problems)} problem(s)")
        listing.add_column("file")
        listing.add_column("reason")
        for p in problems:
            listing.add_row(p["path"], p["reason"])
        out.print(listing)
