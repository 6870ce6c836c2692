"""The leaderboard: methods x datasets, mean +- std over seeds of top-1 on the real test split. Reads the store only."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field

from .method import NONE, REAL

# Columns that split rows apart when the store holds several values of them (several shot counts, say).
SPLITTERS = ("shots", "profile", "classifier")


@dataclass
class Score:
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def text(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f} ({len(self.values)})"


@dataclass
class Leaderboard:
    datasets: list[str]
    keys: list[str]  # the row key's columns: method, setting, and any splitter with several values
    rows: list[tuple[tuple, dict[str, Score]]]
    fixed: dict = field(default_factory=dict)  # splitters with one value, said once in the caption

    def average(self, scores: dict[str, Score]) -> float | None:
        """Mean of the per-dataset means, only where the row has every dataset."""
        if len(self.datasets) < 2 or any(d not in scores for d in self.datasets):
            return None
        return statistics.fmean(scores[d].mean for d in self.datasets)


def build(rows: list[dict]) -> Leaderboard:
    datasets = sorted({r["dataset"] for r in rows})
    splitters = [s for s in SPLITTERS if len({r[s] for r in rows}) > 1]
    fixed = {s: rows[0][s] for s in SPLITTERS if s not in splitters and rows}
    keys = ["method", "setting", *splitters]
    grouped: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        grouped.setdefault(tuple(r[k] for k in keys), {}).setdefault(r["dataset"], []).append(r["top1"])

    def order(key: tuple):
        reference = key[1] in (REAL, NONE)  # reference rows go last
        return (reference, key)

    table = [(key, {d: Score(v) for d, v in scores.items()}) for key, scores in sorted(grouped.items(),
                                                                                        key=lambda kv: order(kv[0]))]
    return Leaderboard(datasets, keys, table, fixed)


def caption(board: Leaderboard) -> str:
    fixed = ", ".join(f"{k} {v}" for k, v in board.fixed.items())
    return f"top-1 % on the real test split, mean ± std (seeds){'; ' + fixed if fixed else ''}"


def _header(board: Leaderboard) -> list[str]:
    return [*board.keys, *board.datasets, *(["average"] if len(board.datasets) > 1 else [])]


def _cells(board: Leaderboard, key: tuple, scores: dict[str, Score]) -> list[str]:
    out = [str(k) for k in key] + [scores[d].text() if d in scores else "-" for d in board.datasets]
    if len(board.datasets) > 1:
        avg = board.average(scores)
        out.append(f"{avg:.1f}" if avg is not None else "-")
    return out


def to_markdown(board: Leaderboard) -> str:
    header = _header(board)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cells(board, key, scores)) + " |" for key, scores in board.rows]
    return "\n".join(lines) + f"\n\n{caption(board)}\n"


def to_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*board.keys, "dataset", "mean", "std", "n", "values"])
    for key, scores in board.rows:
        for d, s in scores.items():
            writer.writerow([*key, d, f"{s.mean:.4f}", f"{s.std:.4f}", len(s.values), " ".join(map(str, s.values))])
    return buf.getvalue()


def to_json(board: Leaderboard) -> str:
    rows = []
    for key, scores in board.rows:
        row = dict(zip(board.keys, key))
        row["datasets"] = {d: {"mean": s.mean, "std": s.std, "n": len(s.values), "values": s.values}
                           for d, s in scores.items()}
        row["average"] = board.average(scores)
        rows.append(row)
    return json.dumps({"caption": caption(board), **board.fixed, "rows": rows}, indent=1)


def to_html(board: Leaderboard) -> str:
    from html import escape

    head = "".join(f"<th>{escape(h)}</th>" for h in _header(board))
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(board, key, scores)) + "</tr>"
                   for key, scores in board.rows)
    return (f"<table>\n<caption>{escape(caption(board))}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>{body}</tbody>\n</table>\n")


def to_rich(board: Leaderboard):
    from rich.table import Table

    table = Table(title="dd-bench leaderboard", caption=caption(board))
    for h in _header(board):
        table.add_column(h, justify="left" if h in board.keys else "right")
    for key, scores in board.rows:
        table.add_row(*_cells(board, key, scores))
    return table


FORMATS = {"md": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
