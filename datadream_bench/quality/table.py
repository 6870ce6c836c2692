"""Quality beside the leaderboard: per leaderboard row and dataset, each measure averaged over the seeds' sets.

The synthetic and synthetic+real cells of one seed share their generated set, so a synthetic+real row whose sets
are those of a synthetic row is not repeated.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..leaderboard import Leaderboard, Row
from ..runner.workdir import WorkDir
from ..store import ResultsStore
from .compute import QualityUnavailable, set_quality

# (key in the summary, column title, what it says, higher is better?)
MEASURES = (
    ("fd", "FD", "Fréchet distance to the real train pool, whole set", False),
    ("fd_class", "FD/class", "Fréchet distance per class, averaged", False),
    ("precision", "prec.", "share of generated images inside the real manifold (k-NN balls), per class", True),
    ("recall", "recall", "share of real images inside the generated manifold, per class", True),
    ("density", "density", "how many real k-NN balls hold a generated image, per class", True),
    ("coverage", "cover.", "share of real images with a generated image in their k-NN ball, per class", True),
    ("vendi", "Vendi", "effective number of distinct images per class (Vendi score)", True),
    ("memorised", "memorised %", "share of images whose nearest real image is a shot, at high cosine", False),
    ("nearest_shot_cos", "shot cos", "mean cosine of each image to the closest shot of its class", None),
    ("consistency", "consistent %", "share of images the judge classifies as their intended class", True),
)
PERCENT = {"memorised", "consistency"}
# The measures a terminal table shows (all of them are in the other formats): they fit 80 columns.
TERMINAL = ("fd", "precision", "recall", "coverage", "vendi", "memorised", "nearest_shot_cos", "consistency")
SHORT = {"fd": "FD", "precision": "prec", "recall": "rec", "coverage": "cov", "vendi": "Vendi", "memorised": "mem%",
         "nearest_shot_cos": "shot", "consistency": "cons%"}


def terminal_table(title: str, first: list[str]):
    """A borderless rich table with the `first` key columns (whole, never cut) and the TERMINAL measures."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, caption_justify="left",
              caption="mem%: nearest real image a shot (cos >= 0.95); shot: mean cosine to the nearest shot; "
                      "cons%: labelled as its class by the judge")
    for name in first:
        t.add_column(name, no_wrap=True)
    for k in TERMINAL:
        t.add_column(SHORT[k], justify="right", no_wrap=True)
    return t


def terminal_cells(summary: dict) -> list[str]:
    out = []
    for k in TERMINAL:
        v = summary.get(k)
        out.append("-" if v is None else f"{100 * v:.0f}" if k in PERCENT else f"{v:.2f}")
    return out


@dataclass
class QualityCell:
    values: dict[str, float] = field(default_factory=dict)  # measure -> mean over seeds
    n: int = 0  # sets measured
    judges: set[str] = field(default_factory=set)
    unavailable: list[str] = field(default_factory=list)

    def text(self, key: str) -> str:
        v = self.values.get(key)
        if v is None:
            return "-"
        return f"{100 * v:.1f}" if key in PERCENT else f"{v:.3g}" if key.startswith("fd") else f"{v:.2f}"


@dataclass
class QualityTable:
    rows: list[tuple[Row, dict[str, QualityCell]]]
    datasets: list[str]
    feature_models: set[str]
    pools: set[str]
    judges: set[str]
    problems: list[str]

    def measure_keys(self) -> list[str]:
        return [k for k, *_ in MEASURES]

    def values(self, row: Row, dataset: str) -> dict[str, float]:
        for r, cells in self.rows:
            if r is row and dataset in cells:
                return cells[dataset].values
        return {}

    def to_rich(self, board: Leaderboard) -> list:
        return _to_rich(self, board)

    def to_markdown(self, board: Leaderboard) -> str:
        return _to_markdown(self, board)

    def to_json(self, board: Leaderboard) -> dict:
        return _to_json(self, board)

    def caption(self) -> str:
        pools = "; ".join(sorted(self.pools))
        return (f"quality of each synthetic set, mean over seeds, in the image-feature space of "
                f"{', '.join(sorted(self.feature_models)) or 'the cells’ CLIP'} (base weights, nothing downloaded); "
                f"real pool: {pools or '-'}; memorised: nearest real image is one of the few shots at cosine >= "
                f"0.95; consistency judged by {' / '.join(sorted(self.judges)) or '-'}")


def measure_board(board: Leaderboard, work_dir: str | Path, device: str | None = None,
                  progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> QualityTable:
    """The quality of every generated set behind the board's generating rows (computed now where not cached)."""
    workdir = WorkDir(work_dir)
    store = ResultsStore(workdir.store)
    records = {r["cell_key"]: r["record"] for r in store.rows(with_record=True)}
    table = QualityTable([], board.datasets, set(), set(), set(), [])
    seen_sets: dict[tuple, tuple] = {}  # (method, shots, profile, classifier, dataset) -> set keys of a shown row
    for row in board.rows:
        if row.source is not None or row.reference:
            continue
        cells: dict[str, QualityCell] = {}
        for dataset, score in row.scores.items():
            cell, per_seed = QualityCell(), []
            for key in score.cells:
                record = records.get(key)
                if record is None:
                    continue
                try:
                    q = set_quality(workdir, record, store, device, progress)
                except QualityUnavailable as e:
                    cell.unavailable.append(str(e))
                    continue
                per_seed.append(q)
                table.feature_models.add(q["feature_model"]["source"])
                table.pools.add(q["real_pool"]["rule"])
                cell.judges.add(q["consistency_judge"]["kind"].split(" of seed")[0])
            for key, *_ in MEASURES:
                values = [q["summary"][key] for q in per_seed if q["summary"].get(key) is not None]
                if values:
                    cell.values[key] = statistics.fmean(values)
            cell.n = len(per_seed)
            table.judges |= cell.judges
            table.problems += [f"{row.key['method']} on {dataset}: {u}" for u in dict.fromkeys(cell.unavailable)]
            cells[dataset] = cell
        sets = tuple(sorted((d, tuple(sorted(records[k]["artifacts"].get("generate", "") for k in s.cells
                                             if k in records))) for d, s in row.scores.items()))
        base = (row.key["method"], row.key["shots"], row.key["profile"], row.key["classifier"], row.variant)
        if seen_sets.get(base) == sets:
            continue  # the synthetic+real row of sets already shown
        seen_sets.setdefault(base, sets)
        table.rows.append((row, cells))
    return table


def attach_quality(board: Leaderboard, work_dir, device: str | None = None, progress=lambda *a: None
                   ) -> QualityTable:
    table = measure_board(board, work_dir, device, progress)
    board.quality = table
    return table


def _to_rich(table: QualityTable, board: Leaderboard):
    out = []
    for dataset in table.datasets:
        t = terminal_table(f"quality of the synthetic sets: {dataset} (mean over seeds; "
                           f"-f json or the report for every measure)",
                           [k for k in board.keys if k != "setting"])
        for row, cells in table.rows:
            cell = cells.get(dataset)
            if cell is None or not cell.n:
                continue
            keys = [v for k, v in zip(board.keys, board.key_text(row)) if k != "setting"]
            t.add_row(*keys, *terminal_cells(cell.values))
        out.append(t)
    return out


def _to_markdown(table: QualityTable, board: Leaderboard) -> str:
    keys = [k for k in board.keys if k != "setting"]
    parts = []
    for dataset in table.datasets:
        header = [*keys, *(title for _, title, _, _ in MEASURES), "sets"]
        lines = [f"quality of the synthetic sets on {dataset}:", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        for row, cells in table.rows:
            cell = cells.get(dataset)
            if cell is None or not cell.n:
                continue
            key_cells = [v for k, v in zip(board.keys, board.key_text(row)) if k != "setting"]
            lines.append("| " + " | ".join([*key_cells, *(cell.text(k) for k, *_ in MEASURES), str(cell.n)]) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + f"\n\n{table.caption()}\n" + "".join(f"- {p}\n" for p in table.problems)


def _to_json(table: QualityTable, board: Leaderboard) -> dict:
    rows = []
    for row, cells in table.rows:
        rows.append({**row.key, "config": row.config, "differs": row.variant,
                     "datasets": {d: {"sets": c.n, **c.values, "judges": sorted(c.judges)} for d, c in cells.items()}})
    return {"caption": table.caption(), "measures": {k: what for k, _, what, _ in MEASURES}, "rows": rows,
            "problems": table.problems}
