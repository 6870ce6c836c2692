"""`dd-bench leaderboard`: the store as a table (text, markdown, CSV, JSON, LaTeX, a standalone HTML page)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .console import err, fail_usage, out


class Fmt(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"
    html = "html"
    latex = "latex"


def store_path(work_dir: Path) -> Path:
    path = work_dir / "results.sqlite"
    if not path.exists():
        raise UsageError(f"no results store at {path}: run `dd-bench run` first, or pass --work-dir")
    return path


def show_board(work_dir: Path, fmt: Fmt, keys: set[str] | None = None, reference: Path | None = None,
               ci: bool = False, quality: bool = False, **where) -> None:
    from .. import leaderboard
    from ..report.references import read_references

    references = read_references(reference) if reference else []
    board = leaderboard.from_store(store_path(work_dir), keys=keys, references=references, ci=ci, **where)
    if not board.rows:
        err.print("no results match", highlight=False)
        return
    if quality:
        from ..quality.table import attach_quality
        from .progress import RichReporter

        with RichReporter() as reporter:  # encoding a large real pool the first time takes a while
            attach_quality(board, work_dir, progress=reporter.progress)
    if fmt == Fmt.table:
        out.print(leaderboard.to_rich(board))
    else:
        print(leaderboard.FORMATS[fmt.value](board), end="")


def leaderboard(
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
    = Path("dd-bench-work"),
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="table | md | csv | json | html | latex")] = Fmt.table,
    shots: Annotated[Optional[int], typer.Option(help="only this shot count")] = None,
    profile: Annotated[Optional[str], typer.Option(help="only this profile")] = None,
    classifier: Annotated[Optional[str], typer.Option(help="only this classifier")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    reference: Annotated[Optional[Path], typer.Option(help="CSV of published numbers to show in their own marked "
                                                      "rows: method,dataset,shots,setting,top1,source")] = None,
    ci: Annotated[bool, typer.Option("--ci", help="spread as the 95% confidence interval of the mean instead of "
                                     "the sample std")] = False,
    quality: Annotated[bool, typer.Option("--quality", help="add the quality of each method's synthetic sets (FD, "
                                          "precision/recall/density/coverage, Vendi, memorisation, class "
                                          "consistency; computed once per set, then cached)")] = False,
) -> None:
    """Methods x datasets: mean ± std (n seeds) of top-1 on the real test split, one row per experiment."""
    try:
        show_board(work_dir, fmt, reference=reference, ci=ci, quality=quality, shots=shots, profile=profile,
                   classifier=classifier, dataset=dataset)
    except UsageError as e:
        fail_usage(e)
