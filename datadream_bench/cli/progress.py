"""Progress on stderr: live bars in a terminal, plain periodic lines in a log (Slurm, nohup, CI).

Every bar says its rate and ETA; a grid bar counts cells, with an ETA from the cells run so far (cells already in the
store leave the count, so they do not make the ETA look short). A stage whose count starts over (the LoRA steps of
the next class) starts a fresh bar. On Ctrl-C, one line says what was kept and that a rerun resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from ..runner.events import CellOutcome, Reporter
from .console import err, labelled

LOG_EVERY_S = 30.0  # without a terminal: at most one progress line this often


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class Count:
    """One bar's numbers: done of total, and the rate since the bar started (work found done is not counted)."""

    what: str
    total: int
    done: int = 0
    base: int = 0  # already done when the bar started
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when done reached total: rate and time stop there, however long the bar stays

    def update(self, done: int) -> None:
        self.done = done
        if self.ended is None and done >= self.total:
            self.ended = time.monotonic()

    def elapsed(self, now: float | None = None) -> float:
        return (self.ended or now or time.monotonic()) - self.started

    def rate(self, now: float | None = None) -> float | None:
        elapsed = self.elapsed(now)
        work = self.done - self.base
        return work / elapsed if work > 0 and elapsed > 0 else None

    def eta(self, now: float | None = None) -> float | None:
        rate = self.rate(now)
        return max(0, self.total - self.done) / rate if rate else None

    def rate_text(self) -> str:
        rate = self.rate()
        if rate is None:
            return "-/s"
        return f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.1f} s each"

    def text(self) -> str:
        return f"{self.what} {self.done}/{self.total} ({self.rate_text()}, ETA {clock(self.eta())})"


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        count: Count = task.fields["count"]
        return Text(count.rate_text(), style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    def render(self, task) -> Text:
        count: Count = task.fields["count"]
        if count.done >= count.total:
            return Text(f"done in {clock(count.elapsed())}", style="progress.elapsed")
        return Text(f"ETA {clock(count.eta())}", style="progress.remaining")


class RichReporter(Reporter):
    """Bars when stderr is a terminal, else a plain line at most every LOG_EVERY_S seconds (and one per cell)."""

    def __init__(self, live: bool | None = None, log_every: float = LOG_EVERY_S):
        self.live = err.is_terminal if live is None else live
        self.log_every = log_every
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                             _EtaColumn(), console=err, transient=True)
        self.counts: dict[str, Count] = {}
        self.tasks: dict[str, int] = {}
        self.grid: Count | None = None
        self.grid_task: int | None = None
        self.current: str | None = None  # the cell whose line came last, until it finishes
        self.running: set[str] = set()  # cells started and not finished (many at once on Ray)
        self.unit: tuple[int, int] | None = None  # the adapt unit in progress (index, of)
        self.finished = self.skipped = self.failed = 0
        self.last_line = 0.0

    def __enter__(self):
        if self.live:
            self.bars.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.live:
            self.bars.stop()
        if exc_type is KeyboardInterrupt:
            err.print(self.interrupted_line(), highlight=False)
        return False

    # ---- what the runner tells ----

    def grid_started(self, total: int) -> None:
        self.grid = Count("grid: cells", total)
        if self.live:
            self.grid_task = self.bars.add_task("grid: cells", total=total, count=self.grid)

    def cell_started(self, index, total, spec) -> None:
        if self.grid is None:
            self.grid_started(total)
        for task in self.tasks.values():
            if self.live:
                self.bars.remove_task(task)
        self.tasks.clear()
        self.counts.clear()
        self.unit = None
        self.current = spec.label()
        self.running.add(self.current)
        err.print(labelled(f"cell {index + 1}/{total}", spec.label(), "bold"), highlight=False)

    def progress(self, what: str, done: int, total: int) -> None:
        if what == "adapt":
            self.unit = (done, total)
        count = self.counts.get(what)
        if count is None or done < count.done or total != count.total:
            # A new bar, or a count that starts over (the next unit's LoRA steps): rate and ETA start over too.
            count = self.counts[what] = Count(what, total, done, base=done)
            self._new_bar(what, count)
        count.update(done)
        if self.live:
            self.bars.update(self.tasks[what], completed=done, total=total, description=self._label(what))
        else:
            self._maybe_log()

    def cell_finished(self, outcome: CellOutcome) -> None:
        if self.grid is not None:
            if outcome.status == "skipped":
                self.grid.total -= 1  # no work: leaves the count, so the ETA reflects cells that run
            self.grid.update(self.grid.done + (outcome.status != "skipped"))
            if self.live and self.grid_task is not None:
                self.bars.update(self.grid_task, completed=self.grid.done, total=self.grid.total,
                                 description=self._grid_label())
        label = outcome.spec.label()
        # Which cell this is, unless it is plainly the one whose line came last (cells run one at a time).
        who = f"{label}: " if self.running - {label} or label != self.current else ""
        self.running.discard(label)
        self.current = None
        if outcome.status == "done":
            self.finished += 1
            err.print(f"  {who}done: top-1 {outcome.top1:.1f}% in {outcome.seconds:.0f}s{self._grid_tail()}",
                      highlight=False)
        elif outcome.status == "skipped":
            self.skipped += 1
            err.print(f"  {who}already in the store: skipped", highlight=False)
        else:
            self.failed += 1
            err.print(labelled(f"  {who}failed:", f"{outcome.error}{self._grid_tail()}"), highlight=False)

    # ---- helpers ----

    def _new_bar(self, what: str, count: Count) -> None:
        if not self.live:
            return
        if what in self.tasks:
            self.bars.remove_task(self.tasks[what])
        self.tasks[what] = self.bars.add_task(self._label(what), total=count.total, completed=count.done,
                                              count=count)

    def _label(self, what: str) -> str:
        if what != "adapt" and self.unit is not None and what.lower().startswith("lora"):
            return f"  {what} (unit {min(self.unit[0] + 1, self.unit[1])}/{self.unit[1]})"
        return f"  {what}"

    def _grid_label(self) -> str:
        skipped = f", {self.skipped} already done" if self.skipped else ""
        return f"grid: cells{skipped}"

    def _grid_tail(self) -> str:
        if self.grid is None or self.grid.done >= self.grid.total:
            return ""
        return f"; grid {self.grid.done}/{self.grid.total} cells to run, ETA {clock(self.grid.eta())}"

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self.last_line < self.log_every:
            return
        self.last_line = now
        parts = [self._label(w).strip() + " " + c.text()[len(w):].strip() for w, c in self.counts.items()]
        if self.grid is not None:
            parts.append(self.grid.text().replace("grid: cells", "grid cells"))
        err.print(time.strftime("%H:%M:%S ") + "; ".join(parts), highlight=False, soft_wrap=True)

    def interrupted_line(self) -> str:
        kept = (f"interrupted: {self.finished} cell(s) finished in this run are in the store"
                f"{f', {self.skipped} were already there' if self.skipped else ''}")
        if len(self.running) > 1:
            kept += (f"; of the {len(self.running)} cells in progress, the finished adapt units and generated images "
                     "are kept on disk")
        elif self.running:
            have = ", ".join(f"{w} {c.done}/{c.total}" for w, c in self.counts.items() if w in ("adapt", "generate"))
            kept += (f"; of {next(iter(self.running))}, the finished adapt units and generated images are kept on disk"
                     f"{f' ({have})' if have else ''}")
        return kept + ". Run the same command again to resume: finished work is skipped, not redone."
