"""`dd-bench plan`: what a grid costs before it runs: images and their disk space, FLOPs per stage and estimated GPU
hours.

Mounted in cli.main as a single command. The table goes to stdout (or JSON with --json); the rate's source and any
caveat go to stderr, and the table's caption says which rate was used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .console import err, fail_usage, print_table


def _items(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _ints(values: list[str] | None, what: str) -> list[int]:
    try:
        return [int(v) for v in _items(values)]
    except ValueError:
        raise UsageError(f"--{what}: expected whole numbers separated by commas, got {','.join(_items(values))!r}") \
            from None


def _fmt_flops(flop: float) -> str:
    return f"{flop / 1e15:,.1f}" if flop else "-"


def _fmt_gb(n: int) -> str:
    return f"{n / 2**30:,.1f}" if n else "-"  # GB as the disk-full messages count them (diskspace.human)


def _fmt_hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f}" if seconds else "-"


def plan(
    method: Annotated[list[str], typer.Option("--method", "-m", help="method name(s), comma-separated, or all")]
    = ["all"],
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", help="dataset key(s), or all (the paper's ten)")]
    = ["all"],
    shots: Annotated[list[str], typer.Option(help="real images per class, e.g. 16 or 1,2,4,8,16")] = ["16"],
    seeds: Annotated[list[str], typer.Option(help="seeds, comma-separated")] = ["0,1,2"],
    setting: Annotated[Optional[list[str]], typer.Option(help="synthetic and/or synthetic+real; default both")]
    = None,
    profile: Annotated[str, typer.Option(help="paper | demo | tiny: whose method settings to plan with")] = "paper",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE config override, as for `run`")]
    = None,
    rate: Annotated[Optional[float], typer.Option(help="achieved TFLOP/s for every stage (overrides the default)")]
    = None,
    calibration: Annotated[Optional[Path], typer.Option(help="JSON written by benchmarks/gpu.py: measured TFLOP/s "
                                                        "per stage")] = None,
    device: Annotated[str, typer.Option(help="GPU whose peak sets the assumed rate when neither --rate nor "
                                        "--calibration is given: h100-sxm, h200, h100-pcie, a100, l40s")]
    = "h100-sxm",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable plan alone on stdout")] = False,
) -> None:
    """Images (and the most disk they take), PFLOPs per stage (generate, adapt, classifier) and GPU hours of a grid,
    before running it."""
    from ..config import parse_overrides
    from ..perf.plan import Rates, peak, plan as make_plan

    try:
        if rate is not None and calibration is not None:
            raise UsageError("give --rate or --calibration, not both")
        peak(device)
        rates = (Rates.given(rate) if rate is not None else Rates.from_calibration(calibration)
                 if calibration is not None else Rates.assumed(device))
        rows = make_plan(_items(method), _items(dataset), _ints(shots, "shots"), _ints(seeds, "seeds"),
                         profile=profile, settings=_items(setting) or None, overrides=parse_overrides(set_ or []),
                         rates=rates)
    except UsageError as e:
        fail_usage(e)

    if as_json:
        print(json.dumps({"rate_source": rates.source, "rates_tflops": rates.tflops,
                          "rows": [r.as_dict() for r in rows],
                          "total": {"images": sum(r.images for r in rows),
                                    "disk_bytes": sum(r.disk_bytes for r in rows),
                                    "flops": sum(r.total_flops for r in rows),
                                    "seconds": sum(r.total_seconds for r in rows)}}, indent=1))
        return

    from rich.table import Table

    table = Table(title="PFLOP per stage, summed over seeds and settings",
                  caption=f"GPU h at {rates.source}.\ndisk GB: the generated PNGs at most (raw 512 px RGB each; "
                          "photos compress, so less), besides LoRAs and classifier states",
                  caption_justify="left")
    for col in ("method", "dataset", "shots", "seeds", "classes", "images", "disk GB", "generate", "adapt",
                "classifier", "total", "GPU h"):
        named = col in ("method", "dataset")
        table.add_column(col, justify="left" if named else "right", no_wrap=named)
    for r in rows:
        table.add_row(r.method, r.dataset, str(r.shots), str(r.seeds), str(r.classes), f"{r.images:,}",
                      _fmt_gb(r.disk_bytes),
                      _fmt_flops(r.flops["generate"]), _fmt_flops(r.flops["adapt"]), _fmt_flops(r.flops["classifier"]),
                      _fmt_flops(r.total_flops), _fmt_hours(r.total_seconds))
    total_flops = sum(r.total_flops for r in rows)
    table.add_row("total", "", "", "", "", f"{sum(r.images for r in rows):,}",
                  _fmt_gb(sum(r.disk_bytes for r in rows)),
                  *[_fmt_flops(sum(r.flops[s] for r in rows)) for s in ("generate", "adapt", "classifier")],
                  _fmt_flops(total_flops), _fmt_hours(sum(r.total_seconds for r in rows)), end_section=True)
    print_table(table)
    if total_flops:
        share = sum(r.flops["generate"] for r in rows) / total_flops
        err.print(f"generation is {share:.0%} of the FLOPs", highlight=False)
    for note in sorted({n for r in rows for n in r.notes}):
        err.print(f"note: {note}", highlight=False)
