"""`dd-bench report`: the static site (leaderboard, quality, galleries, plots, a page per cell) from a work dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .console import fail_usage
from .leaderboard_cmd import store_path


def report(
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
    = Path("dd-bench-work"),
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="folder to write the site into "
                                                    "(default: <work dir>/report)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="the seed whose images the galleries show (default: the "
                                                "smallest with generated images)")] = None,
    per_class: Annotated[int, typer.Option(help="images of each method shown per class", min=1)] = 8,
    quality: Annotated[bool, typer.Option("--quality/--no-quality", help="measure each synthetic set (cached in "
                                          "the work dir after the first time)")] = True,
    device: Annotated[Optional[str], typer.Option(help="device for the quality features; default cuda if "
                                                  "available")] = None,
) -> None:
    """Write a self-contained report site (opens from disk) and print the path of its index.html."""
    from ..report.site import build_report
    from .progress import RichReporter

    try:
        store_path(work_dir)
        with RichReporter() as reporter:
            index = build_report(work_dir, out_dir or work_dir / "report", seed=seed, per_class=per_class,
                                 quality=quality, device=device, progress=reporter.progress)
    except UsageError as e:
        fail_usage(e)
    print(index)
