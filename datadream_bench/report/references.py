"""Published numbers a user supplies (`--reference FILE`), shown in their own marked rows. dd-bench ships none."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UsageError
from ..method import SETTINGS

COLUMNS = ("method", "dataset", "shots", "setting", "top1", "source")


def read_references(path: str | Path) -> list[dict]:
    """Rows of a CSV with the header method,dataset,shots,setting,top1,source; every bad line is named."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--reference {path}: no such file (expected a CSV with columns {','.join(COLUMNS)})")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UsageError(f"{path}:1: the header lacks {', '.join(missing)} (expected {','.join(COLUMNS)}; "
                             f"found {','.join(header) or 'nothing'})")
        rows, problems = [], []
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            try:
                rows.append(_parse(row))
            except ValueError as e:
                problems.append(f"{path}:{line}: {e}")
    if problems:
        raise UsageError("bad reference rows:\n  " + "\n  ".join(problems))
    return rows


def _parse(row: dict) -> dict:
    for c in ("method", "dataset", "source"):
        if not row[c]:
            raise ValueError(f"empty {c}")
    try:
        shots = int(row["shots"])
    except ValueError:
        raise ValueError(f"shots {row['shots']!r} is not a whole number") from None
    try:
        top1 = float(row["top1"])
    except ValueError:
        raise ValueError(f"top1 {row['top1']!r} is not a number") from None
    if not 0 <= top1 <= 100:
        raise ValueError(f"top1 {top1} is outside 0..100 (a percentage)")
    if row["setting"] not in SETTINGS:
        raise ValueError(f"setting {row['setting']!r} is not one of {', '.join(SETTINGS)}")
    return {"method": row["method"], "dataset": row["dataset"], "shots": shots, "setting": row["setting"],
            "top1": top1, "source": row["source"]}
