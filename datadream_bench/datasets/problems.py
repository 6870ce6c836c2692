"""What is wrong with a dataset copy: one Problem per offending file or fact, all raised together."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class Problem:
    path: str  # the file (or folder, or split file) at fault
    reason: str
    # "file": one file or row is bad (skip-bad mode may drop it, counted and capped); "data": the copy as a whole
    kind: str = "file"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class DatasetInvalid(UsageError):
    """A dataset copy failed validation; .problems lists every offender, .report what was checked."""

    def __init__(self, key: str, problems: list[Problem], report: dict | None = None, shown: int = 50):
        self.key, self.problems, self.report = key, list(problems), report or {}
        lines = [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        super().__init__(f"dataset {key!r} is not usable: {len(self.problems)} problem(s)\n" + "\n".join(lines))
