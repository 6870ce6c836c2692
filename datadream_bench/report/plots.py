"""The report's figures (matplotlib, SVG, no network): accuracy against shots, accuracy against compute, and
per-class accuracy as a heatmap. Each function returns the file it wrote, or None when there is nothing to plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "dd-bench", "figure.dpi": 100,
                         "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def plain(text: object) -> str:
    """A user string (class, method, dataset name) drawn as written: a "$" is a dollar, never the start of math."""
    return str(text).replace("$", r"\$")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# synthetic only dashed, with real images solid, the zero-shot reference dotted
SETTING_STYLES = {"synthetic": "--", "synthetic+real": "-", "real": "-", "none": ":"}


def accuracy_vs_shots(series: dict[str, list[tuple[int, float, float | None]]], dataset: str,
                      path: Path) -> Path | None:
    """series: label -> [(shots, mean top-1, spread or None)]; drawn only when some label has two shot counts."""
    if not any(len({s for s, _, _ in points}) > 1 for points in series.values()):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    # One colour per method and one line style per setting: with a dozen lines, colours alone would repeat.
    colour = _method_colours(plt, series)
    for label, points in sorted(series.items()):
        points = sorted(points)
        x = [p[0] for p in points]
        y = [p[1] for p in points]
        err = [p[2] or 0.0 for p in points]
        method, _, setting = label.partition(" / ")
        style = SETTING_STYLES.get(setting.split(" ")[0], "-")
        ax.errorbar(x, y, yerr=err, label=plain(label), marker="o", markersize=3, capsize=2, linestyle=style,
                    color=colour[method])
    ax.set_xscale("log", base=2)
    shots = sorted({p[0] for points in series.values() for p in points})
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("real shots per class")
    ax.set_ylabel("top-1 % (mean ± std over seeds)")
    ax.set_title(f"{plain(dataset)}: accuracy against shots")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


SETTING_MARKERS = {"synthetic": "o", "synthetic+real": "^", "real": "s", "none": "*"}


def _method_colours(plt, labels) -> dict:
    """One colour per method (the part of a label before " / "), the same in every figure of a report."""
    methods = sorted({label.split(" / ")[0] for label in labels})
    return {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}


def accuracy_vs_compute(points: list[tuple[str, int, float, float]], dataset: str, device: str,
                        path: Path) -> Path | None:
    """points: (label "method / setting ...", shots, stage seconds per cell without model loading, mean top-1).
    A label's points across shot counts are joined in shots order, each marked with its shot count."""
    points = [p for p in points if p[2] > 0]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    colour = _method_colours(plt, [p[0] for p in points])
    several = len({p[1] for p in points}) > 1
    for label in sorted({p[0] for p in points}):  # a legend, not labels on the points: they overlap
        mine = sorted(p for p in points if p[0] == label)
        method, _, setting = label.partition(" / ")
        x, y = [p[2] for p in mine], [p[3] for p in mine]
        ax.plot(x, y, marker=SETTING_MARKERS.get(setting.split(" ")[0], "o"), markersize=5, linewidth=0.8,
                linestyle=SETTING_STYLES.get(setting.split(" ")[0], "-"), color=colour[method], label=plain(label))
        if several:
            for shots, seconds, top1 in zip([p[1] for p in mine], x, y):
                ax.annotate(str(shots), (seconds, top1), xytext=(3, 2), textcoords="offset points", fontsize=6,
                            color=colour[method])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xscale("log")
    ax.set_xlabel(f"{device} seconds per cell (stage time, model loading excluded; mean over seeds)")
    ax.set_ylabel("top-1 %")
    ax.set_title(f"{plain(dataset)}: accuracy against compute" + (" (numbers: shots)" if several else ""))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def per_class_heatmap(rows: list[str], classes: list[str], values: np.ndarray, dataset: str,
                      path: Path) -> Path | None:
    """values: (rows, classes) per-class top-1 % (NaN where unknown)."""
    if not rows or not classes:
        return None
    plt = _pyplot()
    width = min(18.0, 2.5 + 0.45 * len(classes))
    fig, ax = plt.subplots(figsize=(width, 0.9 + 0.32 * len(rows)))
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ax.set_yticks(range(len(rows)), [plain(r) for r in rows])
    if len(classes) <= 60:
        ax.set_xticks(range(len(classes)), [plain(c) for c in classes], rotation=60, ha="right", fontsize=7)
        if len(classes) * len(rows) <= 400:
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if v < 60 else "black")
    else:
        ax.set_xlabel(f"{len(classes)} classes")
    fig.colorbar(image, ax=ax, label="top-1 %", fraction=0.03)
    ax.set_title(f"{plain(dataset)}: per-class accuracy (mean over seeds)")
    return _save(fig, path)


def training_curves(loss: list[float], val: list[list[float]], path: Path) -> Path | None:
    """The classifier's loss per epoch and val top-1 at the evaluated epochs."""
    if not loss and not val:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    if loss:
        ax.plot(range(1, len(loss) + 1), loss, color="tab:blue", label="train loss")
        ax.set_ylabel("loss")
    ax.set_xlabel("epoch")
    if val:
        ax2 = ax.twinx()
        ax2.plot([v[0] for v in val], [v[1] for v in val], color="tab:orange", marker="o", markersize=3,
                 label="val top-1 %")
        ax2.set_ylabel("val top-1 %")
        ax2.spines["right"].set_visible(True)
    fig.legend(fontsize=7, loc="upper center", ncols=2, frameon=False)
    return _save(fig, path)
