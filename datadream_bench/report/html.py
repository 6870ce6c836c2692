"""HTML through Jinja2 templates with autoescape on: every name that comes from a user (class names of a user's
dataset, plugin and method names, config values) is escaped by the template engine, never by hand."""

from __future__ import annotations

from functools import lru_cache

from ..leaderboard import Leaderboard, Row, caption, notes
from .latex import BLOCK_TITLES


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("datadream_bench.report", "templates"),
                       autoescape=select_autoescape(["html"], default_for_string=True, default=True),
                       trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def _cell(board: Leaderboard, row: Row, dataset: str, deltas: bool) -> dict:
    s = row.scores.get(dataset)
    if s is None:
        return {"text": "–", "best": False, "missing": False, "title": "", "delta": "", "delta_class": ""}
    title = "published" if s.published else ", ".join(f"seed {seed}: {v:.2f}" for seed, v in zip(s.seeds, s.values))
    if s.missing:
        title += f"{'; ' if title else ''}missing seed(s) {', '.join(map(str, s.missing))}"
    delta = board.delta(row, dataset) if deltas else None
    return {"text": s.text(board.ci), "best": board.best(row, dataset), "missing": bool(s.missing), "title": title,
            "delta": "" if delta is None else f"{delta:+.1f} vs real-only",
            "delta_class": "" if delta is None else ("up" if delta > 0 else "down" if delta < 0 else "")}


def table_context(board: Leaderboard, deltas: bool = False, row_href=None) -> dict:
    """What the leaderboard macro renders: the blocks per setting with their rows and cells.
    row_href(row) -> link of the row's first cell (the report links methods to their pages), or None."""
    average = len(board.datasets) > 1
    blocks = []
    for block, rows in board.blocks():
        out_rows = []
        for row in rows:
            cells = [_cell(board, row, d, deltas) for d in board.datasets]
            if average:
                avg = board.average(row)
                cells.append({"text": "–" if avg is None else f"{avg:.1f}", "best": False, "missing": False,
                              "title": "mean of the dataset means", "delta": "", "delta_class": ""})
            out_rows.append({"key_cells": board.key_text(row), "cells": cells, "published": row.source is not None,
                             "href": row_href(row) if row_href else None})
        blocks.append({"title": BLOCK_TITLES.get(block, block), "rows": out_rows})
    return {"key_header": board.keys, "data_header": [*board.datasets, *(["average"] if average else [])],
            "width": len(board.keys) + len(board.datasets) + int(average), "blocks": blocks,
            "caption": caption(board), "notes": notes(board)}


def label_of(board: Leaderboard, row: Row) -> str:
    text = f"{row.key['method']} / {row.key['setting']}"
    extra = [f"{row.key[k]}-shot" if k == "shots" else str(row.key[k]) for k in board.keys
             if k in ("shots", "profile", "classifier")]
    return " ".join([text, *extra, *([f"[{row.variant}]"] if row.variant else [])])


def quality_context(qtable, board: Leaderboard) -> dict:
    from ..quality.table import MEASURES

    per_dataset = []
    for dataset in qtable.datasets:
        rows = []
        for row, cells in qtable.rows:
            cell = cells.get(dataset)
            if cell is None or not cell.n:
                continue
            rows.append({"label": label_of(board, row).replace(f" / {row.key['setting']}", ""),
                         "measures": [cell.text(k) for k, *_ in MEASURES], "n": cell.n})
        per_dataset.append({"dataset": dataset, "rows": rows})
    return {"measures": [{"title": t, "what": w, "better": "higher" if b else "lower" if b is False else ""}
                         for _, t, w, b in MEASURES],
            "datasets": per_dataset, "caption": qtable.caption(), "problems": qtable.problems}


def leaderboard_page(board: Leaderboard) -> str:
    """A standalone page (inline CSS, no external resource): `dd-bench leaderboard -f html > board.html`."""
    quality = quality_context(board.quality, board) if board.quality is not None else None
    return render("leaderboard.html", title="Leaderboard", nav=[], table=table_context(board, deltas=True),
                  quality=quality)
