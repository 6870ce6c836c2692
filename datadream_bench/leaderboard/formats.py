"""The leaderboard as text: markdown, CSV, JSON, a rich table, and the report's HTML and LaTeX."""

from __future__ import annotations

import csv
import io
import json

from .board import Leaderboard, Row, Score


def caption(board: Leaderboard) -> str:
    fixed = ", ".join(f"{k} {v}" for k, v in board.fixed.items())
    spread = "95% confidence interval of the mean (Student's t)" if board.ci else "sample std (n−1)"
    return (f"top-1 % on the real test split, mean ± {spread} over seeds (n seeds; one seed: no spread)"
            f"{'; ' + fixed if fixed else ''}")


def notes(board: Leaderboard) -> list[str]:
    out = board.missing()
    if board.superseded():
        out.append(f"{board.superseded()} result(s) left out: an older result of the same seed, or one on an "
                   f"older copy of the dataset")
    if any(r.source is not None for r in board.rows):
        out.append("published rows: numbers supplied with --reference, not measured by dd-bench")
    return out


def _header(board: Leaderboard) -> list[str]:
    return [*board.keys, *board.datasets, *(["average"] if len(board.datasets) > 1 else [])]


def _cells(board: Leaderboard, row: Row) -> list[str]:
    out = board.key_text(row) + [row.scores[d].text(board.ci) if d in row.scores else "-" for d in board.datasets]
    if len(board.datasets) > 1:
        avg = board.average(row)
        out.append(f"{avg:.1f}" if avg is not None else "-")
    return out


def to_markdown(board: Leaderboard) -> str:
    header = _header(board)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in board.rows:
        cells = _cells(board, row)
        offset = len(board.keys)
        for i, d in enumerate(board.datasets):
            if board.best(row, d):
                cells[offset + i] = f"**{cells[offset + i]}**"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    tail = "\n".join(f"- {n}" for n in notes(board))
    text = "\n".join(lines) + f"\n\n{caption(board)}\n" + (f"\n{tail}\n" if tail else "")
    return text + (f"\n{board.quality.to_markdown(board)}" if board.quality is not None else "")


def to_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    measures = board.quality.measure_keys() if board.quality is not None else []
    writer.writerow(["method", "setting", "shots", "profile", "classifier", "config", "differs", "source", "dataset",
                     "mean", "std", "ci95", "n", "expected", "missing_seeds", "seeds", "values",
                     *(f"quality_{m}" for m in measures)])
    for row in board.rows:
        for d, s in row.scores.items():
            k = row.key
            quality = board.quality.values(row, d) if board.quality is not None else {}
            writer.writerow([k["method"], k["setting"], k["shots"], k["profile"], k["classifier"], row.config,
                             row.variant, row.source or "", d, _num(s.mean), _num(s.std), _num(s.ci95), s.n,
                             len(set(s.expected) | set(s.seeds)), " ".join(map(str, s.missing)),
                             " ".join(map(str, s.seeds)), " ".join(map(str, s.values)),
                             *(_num(quality.get(m)) for m in measures)])
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def score_json(s: Score) -> dict:
    return {"mean": s.mean, "std": s.std, "ci95": s.ci95, "n": s.n, "values": s.values, "seeds": s.seeds,
            "expected_seeds": s.expected, "missing_seeds": s.missing, "left_out": s.superseded,
            "published": s.published}


def to_json(board: Leaderboard) -> str:
    rows = []
    for row in board.rows:
        rows.append({**row.key, "config": row.config, "differs": row.variant, "source": row.source,
                     "datasets": {d: score_json(s) for d, s in row.scores.items()},
                     "average": board.average(row)})
    quality = {"quality": board.quality.to_json(board)} if board.quality is not None else {}
    return json.dumps({"caption": caption(board), **board.fixed, "notes": notes(board), "rows": rows, **quality},
                      indent=1)


def to_rich(board: Leaderboard):
    """A rich renderable: the table, and the quality tables when the board has them."""
    from rich.console import Group

    from rich.text import Text

    parts = [_rich_table(board)]
    lines = notes(board)
    if lines:  # below the table at the console's width (a caption would wrap at the table's)
        shown = lines if len(lines) <= 12 else [*lines[:10], f"... and {len(lines) - 10} more (-f json lists all)"]
        parts.append(Text("\n".join(shown), style="yellow"))
    if board.quality is not None:
        parts += board.quality.to_rich(board)
    return Group(*parts)


def _rich_table(board: Leaderboard):
    from rich.table import Table
    from rich.text import Text

    # The consoles print with markup off (names are the user's text): styles come as Text, never as markup.
    table = Table(title="dd-bench leaderboard", caption=caption(board), caption_justify="left")
    for h in _header(board):
        table.add_column(h, justify="left" if h in board.keys else "right")
    for i, (block, rows) in enumerate(board.blocks()):
        if i:
            table.add_section()
        for row in rows:
            cells: list = list(_cells(board, row))
            offset = len(board.keys)
            for j, d in enumerate(board.datasets):
                if board.best(row, d):
                    cells[offset + j] = Text(cells[offset + j], style="bold")
                elif d in row.scores and row.scores[d].missing:
                    cells[offset + j] = Text(cells[offset + j], style="yellow")
            table.add_row(*cells)
    return table


def to_html(board: Leaderboard) -> str:
    from ..report.html import leaderboard_page

    return leaderboard_page(board)


def to_latex(board: Leaderboard) -> str:
    from ..report.latex import leaderboard_latex

    return leaderboard_latex(board)


FORMATS = {"md": to_markdown, "csv": to_csv, "json": to_json, "html": to_html, "latex": to_latex}
