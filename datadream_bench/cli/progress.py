"""A runner Reporter that draws rich progress bars on stderr: one line per cell, one bar per stage."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..runner.events import CellOutcome, Reporter
from .console import err


class RichReporter(Reporter):
    def __init__(self):
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=err, transient=True)
        self.stage_tasks: dict[str, int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc):
        self.bars.stop()

    def cell_started(self, index, total, spec) -> None:
        for task in self.stage_tasks.values():
            self.bars.remove_task(task)
        self.stage_tasks.clear()
        err.print(f"[bold]cell {index + 1}/{total}[/] {spec.label()}", highlight=False)

    def progress(self, what: str, done: int, total: int) -> None:
        if what not in self.stage_tasks:
            self.stage_tasks[what] = self.bars.add_task(f"  {what}", total=total)
        self.bars.update(self.stage_tasks[what], completed=done, total=total)

    def cell_finished(self, outcome: CellOutcome) -> None:
        if outcome.status == "done":
            err.print(f"  done: top-1 {outcome.top1:.1f}% in {outcome.seconds:.0f}s", highlight=False)
        elif outcome.status == "skipped":
            err.print("  already in the store: skipped", highlight=False)
        else:
            err.print(f"  [red]failed[/]: {outcome.error}", highlight=False)
