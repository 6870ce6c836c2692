"""`dd-bench merge OTHER...`: bring the finished cells of other work dirs (or stores) into this work dir's store.

A key already here with the same result is kept once; a key here with a different result is reported and left as
it is (exit 1, so that a script notices). Mounted in cli.main as a single command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .console import err, fail_usage

DEFAULT_WORK_DIR = Path("dd-bench-work")


def merge(
    sources: Annotated[list[Path], typer.Argument(help="other work dirs, or their results.sqlite files")],
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="the work dir whose store receives the rows")]
    = DEFAULT_WORK_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="the merge report alone on stdout")] = False,
) -> None:
    """Bring finished cells from other work dirs into this one (conflicting results are reported, not overwritten)."""
    from ..store import ResultsStore
    from ..store.merge import merge as merge_stores

    try:
        if work_dir.exists() and not work_dir.is_dir():
            raise UsageError(f"--work-dir {work_dir} is a file, not a folder")
        report = merge_stores(ResultsStore(work_dir / "results.sqlite"), sources)
    except UsageError as e:
        fail_usage(e)
    if as_json:
        print(json.dumps({"added": report.added, "identical": report.identical, "same_result": report.same_result,
                          "conflicts": [{"key": c.cell_key, "source": str(c.source), "cell": c.label,
                                         "fields": c.fields} for c in report.conflicts]}, indent=1))
    err.print(f"{len(report.added)} cell(s) added, {len(report.identical) + len(report.same_result)} already here "
              f"with the same result, {len(report.conflicts)} conflicting", highlight=False, markup=False)
    for c in report.conflicts:
        err.print(f"  conflict {c.cell_key[:10]} {c.label} from {c.source}: {', '.join(c.fields)} differ; "
                  f"the row in {work_dir} is kept", highlight=False, markup=False)
    raise typer.Exit(1 if report.conflicts else 0)
