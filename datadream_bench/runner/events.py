"""How the runner tells its caller what is happening. Library code never prints: the CLI renders these on stderr."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..spec import CellSpec

log = logging.getLogger("dd_bench")


@dataclass
class CellOutcome:
    spec: CellSpec
    status: str  # done | skipped (already in the store) | failed
    top1: float | None = None
    seconds: float = 0.0
    error: str | None = None


class Reporter:
    """No-op base: subclass and override what you want to show."""

    def cell_started(self, index: int, total: int, spec: CellSpec) -> None:
        pass

    def progress(self, what: str, done: int, total: int) -> None:
        pass

    def cell_finished(self, outcome: CellOutcome) -> None:
        pass
