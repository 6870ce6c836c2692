"""`dd-bench du`: where a work dir's disk space goes, per kind of artifact and method, and how much of it no result
in the store uses (with --unused, those paths alone, one per line, to review and remove). Mounted in cli.main as a
single command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..diskspace import human
from ..errors import UsageError
from .console import err, fail_usage, print_table
from .results_cmd import DEFAULT_WORK_DIR


def du(
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
    = DEFAULT_WORK_DIR,
    unused: Annotated[bool, typer.Option("--unused", help="print only the paths of artifacts no result uses, one "
                                         "per line")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="every artifact, machine-readable, alone on stdout")]
    = False,
) -> None:
    """Disk space of a work dir per kind of artifact and method, and what no finished cell uses."""
    from ..store import ResultsStore
    from ..store.usage import work_dir_usage

    if not work_dir.is_dir():
        fail_usage(f"no work dir at {work_dir}")
    store_path = work_dir / "results.sqlite"
    try:
        rows = ResultsStore(store_path).rows(with_record=True) if store_path.is_file() else []
    except UsageError as e:  # a damaged store
        fail_usage(e)
    arts = work_dir_usage(work_dir, [r["record"] for r in rows])

    if unused:
        for a in arts:
            if a.unused:
                print(a.path)
        err.print(f"{sum(a.unused for a in arts)} artifact(s), {human(sum(a.bytes for a in arts if a.unused))}, "
                  f"used by none of the {len(rows)} result(s) in {store_path}: work of a run not finished yet (a "
                  "rerun would reuse it), or of settings no run asks for any more. Artifacts holding a claim (a run "
                  "at work) are not listed.", highlight=False)
        return
    if as_json:
        print(json.dumps({"work_dir": str(work_dir), "results": len(rows),
                          "artifacts": [{"kind": a.kind, "group": a.group, "key": a.key, "path": str(a.path),
                                         "files": a.files, "bytes": a.bytes, "used_by": a.used_by,
                                         "claimed": a.claimed} for a in arts]}, indent=1))
        return

    from rich.table import Table

    groups: dict[tuple[str, str], list] = {}
    for a in arts:
        groups.setdefault((a.kind, a.group), []).append(a)
    table = Table(title=f"disk space of {work_dir}", caption=f"{len(rows)} result(s) in the store; sizes as on the disk "
                  "(allocated blocks). Unused: named by no result; in progress: a run holds a claim inside it",
                  caption_justify="left")
    for col in ("kind", "method / dataset", "artifacts", "files", "size", "unused", "unused size", "in progress"):
        table.add_column(col, justify="left" if col in ("kind", "method / dataset") else "right")
    for (kind, group), items in groups.items():
        table.add_row(kind, group, str(len(items)),
                      f"{sum(a.files for a in items):,}", human(sum(a.bytes for a in items)),
                      "-" if kind == "shared" else str(sum(a.unused for a in items)),
                      "-" if kind == "shared" else human(sum(a.bytes for a in items if a.unused)),
                      "-" if kind == "shared" else str(sum(a.claimed for a in items)))
    table.add_row("total", "", str(len(arts)), f"{sum(a.files for a in arts):,}", human(sum(a.bytes for a in arts)),
                  str(sum(a.unused for a in arts)), human(sum(a.bytes for a in arts if a.unused)),
                  str(sum(a.claimed for a in arts)), end_section=True)
    print_table(table)
