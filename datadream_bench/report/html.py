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


def leaderboard_page(board: Leaderboard) -> str:
    """A standalone page (inline CSS, no external resource): `dd-bench leaderboard -f html > board.html`."""
    return render("leaderboard.html", title="Leaderboard", nav=[], table=table_context(board, deltas=True))
