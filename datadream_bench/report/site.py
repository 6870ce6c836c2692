"""`dd-bench report`: a static site from the results store and the work dir, that opens from disk (no network, no
CDN: CSS inline, images copied or thumbnailed into the site's own folder).

    index.html                the leaderboard (blocks per setting, Δ against real-only), quality, plots, every cell
    gallery-<dataset>-<k>shot.html   per class: the real shots of one seed beside each method's images
    cells/<key>.html          one cell: config, provenance, stage times, filter report, curves, per-class accuracy
"""

from __future__ import annotations

import shutil
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import leaderboard
from ..errors import UsageError
from ..fingerprint import fingerprint
from ..leaderboard import Leaderboard, Row
from ..runner.workdir import WorkDir, safe_name
from ..store import ResultsStore
from ..quality import sets
from . import plots
from .html import label_of, quality_context, render, table_context

MARKER = ".dd-bench-report"  # a folder holding it is ours to replace
THUMB = 128  # longest side of a gallery image, in pixels (smaller images are copied as they are)


@dataclass
class Site:
    out: Path

    def image(self, path: Path) -> str:
        """The image's URL inside the site: a thumbnail (PNG) written once, named by the source's path and stamp."""
        from PIL import Image

        path = Path(path)
        st = path.stat()
        name = f"img/{fingerprint([str(path.resolve()), st.st_size, st.st_mtime_ns, THUMB])}.png"
        target = self.out / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as img:
                img = img.convert("RGB")
                if max(img.size) > THUMB:
                    img.thumbnail((THUMB, THUMB), Image.BICUBIC)
                tmp = target.with_name(target.name + ".tmp")
                img.save(tmp, format="PNG")
                tmp.replace(target)
        return name

    def write(self, name: str, html: str) -> Path:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        return path


def cell_href(key: str, prefix: str = "") -> str:
    return f"{prefix}cells/{key}.html"


def gallery_name(dataset: str, shots: int) -> str:
    return f"gallery-{safe_name(dataset)}-{shots}shot.html"


def build_report(work_dir: str | Path, out_dir: str | Path, *, seed: int | None = None, per_class: int = 8,
                 quality: bool = True, device: str | None = None,
                 progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> Path:
    """Write the site; returns index.html. quality: measure every generated set first (cached in the work dir)."""
    workdir = WorkDir(work_dir)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise UsageError(f"--out {out} holds files that are not a dd-bench report; give an empty or new folder")
        shutil.rmtree(out)  # an earlier report: replaced whole, so no stale page survives
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by dd-bench report; the whole folder is replaced by the next report\n")
    site = Site(out)
    store = ResultsStore(workdir.store)
    results = {r["cell_key"]: r for r in store.rows(with_record=True)}
    board = leaderboard.from_store(workdir.store)
    qtable = None
    if quality and board.rows:
        from ..quality.table import attach_quality

        qtable = attach_quality(board, workdir.root, device, progress)
    classes = dataset_classes(workdir, results)

    galleries = write_galleries(site, workdir, board, results, classes, seed, per_class)
    figures = write_plots(site, board, results, classes)
    for i, (key, r) in enumerate(sorted(results.items())):
        progress("report: cell pages", i, len(results))
        write_cell_page(site, workdir, r, classes.get(r["dataset"], []), per_class)
    progress("report: cell pages", len(results), len(results))

    cells = [{"key": k, "href": cell_href(k), **{c: r[c] for c in ("method", "dataset", "shots", "seed", "setting",
                                                                     "profile")},
              "top1": f"{r['top1']:.1f}", "seconds": f"{r['record']['timings_s'].get('total', 0):.0f}"}
             for k, r in sorted(results.items(), key=lambda kv: (kv[1]["dataset"], kv[1]["method"],
                                                                  kv[1]["setting"], kv[1]["shots"], kv[1]["seed"]))]
    index = render("index.html", title="Report", nav=nav(galleries), table=table_context(board, deltas=True),
                   quality=quality_context(qtable, board) if qtable is not None else None,
                   galleries=galleries, figures=figures, cells=cells, work_dir=str(workdir.root))
    return site.write("index.html", index)


def nav(galleries: list[dict], prefix: str = "") -> list[tuple[str, str]]:
    return [("Leaderboard", f"{prefix}index.html#leaderboard"), ("Quality", f"{prefix}index.html#quality"),
            ("Plots", f"{prefix}index.html#plots"), ("Cells", f"{prefix}index.html#cells"),
            *((f"Gallery: {g['title']}", prefix + g["href"]) for g in galleries)]


def dataset_classes(workdir: WorkDir, results: dict) -> dict[str, list[str]]:
    """dataset -> class names, from the few-shot draws the cells saved."""
    out: dict[str, list[str]] = {}
    for r in results.values():
        if r["dataset"] not in out:
            drawn = sets.few_shot(workdir, r["record"])
            if drawn is not None:
                out[r["dataset"]] = drawn[0]
    return out


# ---- galleries ----

def write_galleries(site: Site, workdir: WorkDir, board: Leaderboard, results: dict, classes: dict,
                    seed: int | None, per_class: int) -> list[dict]:
    pages = []
    generating = [row for row in board.rows if row.source is None and not row.reference]
    for dataset in board.datasets:
        for shots in sorted({row.key["shots"] for row in board.rows if dataset in row.scores}):
            strips = []  # (label, row, the chosen seed's record)
            seeds_here = sorted({s for row in generating if row.key["shots"] == shots and dataset in row.scores
                                 for s in row.scores[dataset].seeds})
            if not seeds_here:
                continue
            chosen = seed if seed in seeds_here else seeds_here[0]
            seen_sets = set()
            for row in generating:
                score = row.scores.get(dataset)
                if row.key["shots"] != shots or score is None or chosen not in score.seeds:
                    continue
                record = results[score.cells[score.seeds.index(chosen)]]["record"]
                set_key = record["artifacts"].get("generate")
                if set_key in seen_sets:
                    continue  # synthetic+real reuses the synthetic cell's set: shown once
                seen_sets.add(set_key)
                strips.append((label_of(board, row).replace(f" / {row.key['setting']}", ""), record))
            if not strips:
                continue
            drawn = sets.few_shot(workdir, strips[0][1])
            names = drawn[0] if drawn else classes.get(dataset, [])
            shots_by_class = drawn[1] if drawn else [[] for _ in names]
            images = {record["cell_key"]: sets.generated_images(workdir, record) for _, record in strips}
            class_blocks = []
            for label, name in enumerate(names):
                real = [{"src": site.image(p), "caption": f"shot {i + 1}", "title": str(p)}
                        for i, p in enumerate(shots_by_class[label]) if Path(p).is_file()]
                method_strips = []
                for method_label, record in strips:
                    mine = [g for g in images[record["cell_key"]] if g.label == label][:per_class]
                    method_strips.append({"label": method_label, "href": cell_href(record["cell_key"]),
                                          "images": [thumb(site, g, record["cell_key"]) for g in mine],
                                          "forced": sum(bool(g.forced) for g in mine),
                                          "n": len(mine)})
                class_blocks.append({"name": name, "real": real, "methods": method_strips})
            title = f"{dataset} ({shots}-shot)"
            href = gallery_name(dataset, shots)
            site.write(href, render("gallery.html", title=f"Gallery: {title}", nav=[("Report", "index.html")],
                                    dataset=dataset, shots=shots, seed=chosen, seeds=seeds_here,
                                    classes=class_blocks, per_class=per_class))
            pages.append({"title": title, "href": href, "seed": chosen})
    return pages


def thumb(site: Site, g: sets.GeneratedImage, cell_key: str, prefix: str = "") -> dict:
    caption = f"#{g.index}" + (" forced" if g.forced else "")
    title = f"{g.id}: {g.prompt}" + (" (kept after every filter candidate was rejected)" if g.forced else "")
    init = None
    if g.init_image is not None and Path(g.init_image).is_file():
        init = prefix + site.image(g.init_image)
    return {"src": prefix + site.image(g.path), "caption": caption, "title": title, "forced": bool(g.forced),
            "init": init, "href": prefix + cell_href(cell_key)}


# ---- plots ----

def _row_cells(row: Row, dataset: str, results: dict) -> list[dict]:
    score = row.scores.get(dataset)
    return [results[k] for k in (score.cells if score else []) if k in results]


def compute_seconds(record: dict) -> float:
    """Stage time of a cell without model loading (the part the method and classifier computed)."""
    timings = record.get("timings_s") or {}
    loads = record.get("model_load_s") or {}
    return float(timings.get("total", 0.0)) - float(sum(loads.values()))


def series_label(board: Leaderboard, row) -> str:
    """A row's label without its shot count: the plots draw one series per label across shot counts."""
    return label_of(board, row).replace(f" {row.key['shots']}-shot", "")


def write_plots(site: Site, board: Leaderboard, results: dict, classes: dict) -> list[dict]:
    figures = []
    measured = [row for row in board.rows if row.source is None]
    for dataset in board.datasets:
        slug = safe_name(dataset)
        series: dict[str, list] = defaultdict(list)
        for row in measured:
            score = row.scores.get(dataset)
            if score is not None and score.mean is not None:
                series[series_label(board, row)].append((row.key["shots"], score.mean, score.std))
        path = plots.accuracy_vs_shots(dict(series), dataset, site.out / "plots" / f"shots-{slug}.svg")
        if path:
            figures.append({"src": f"plots/{path.name}", "title": f"{dataset}: accuracy against shots",
                            "text": "Mean top-1 over seeds (bars: sample std) for each shot count the store holds."})

        points, devices = [], set()
        for row in measured:
            cells = _row_cells(row, dataset, results)
            if cells:
                seconds = statistics.fmean(compute_seconds(c["record"]) for c in cells)
                devices |= {str((c["record"]["spec"].get("runtime") or {}).get("device", "cpu")) for c in cells}
                points.append((series_label(board, row), row.key["shots"], seconds,
                               statistics.fmean(c["top1"] for c in cells)))
        device = "GPU" if any(d.startswith("cuda") for d in devices) else "CPU"
        path = plots.accuracy_vs_compute(points, dataset, device, site.out / "plots" / f"compute-{slug}.svg")
        if path:
            figures.append({"src": f"plots/{path.name}", "title": f"{dataset}: accuracy against compute",
                            "text": "Seconds per cell are the stages' time without model loading (recorded "
                                    "apart), averaged over seeds; a generated set or LoRA reused from another "
                                    "setting counts where it was made."})

        names = classes.get(dataset, [])
        labels, matrix = [], []
        for row in measured:
            per_class = [c["record"]["metrics"].get("per_class") for c in _row_cells(row, dataset, results)]
            per_class = [p for p in per_class if p and len(p) == len(names)]
            if per_class:
                arr = np.array([[np.nan if v is None else v for v in p] for p in per_class], dtype=float)
                labels.append(label_of(board, row))
                matrix.append(np.nanmean(arr, axis=0) if np.isfinite(arr).any() else arr[0])
        path = plots.per_class_heatmap(labels, names, np.array(matrix), dataset,
                                       site.out / "plots" / f"classes-{slug}.svg") if matrix else None
        if path:
            figures.append({"src": f"plots/{path.name}", "title": f"{dataset}: per-class accuracy",
                            "text": "Top-1 per class on the real test split, mean over seeds."})
    return figures


# ---- cell pages ----

def write_cell_page(site: Site, workdir: WorkDir, result: dict, classes: list[str], per_class: int) -> Path:
    record = result["record"]
    spec, metrics = record["spec"], record["metrics"]
    key = record["cell_key"]
    timings, loads = record.get("timings_s") or {}, record.get("model_load_s") or {}
    order = ["fewshot", "adapt", "generate", "train", "evaluate"]  # the record's JSON keeps them sorted by name
    named = sorted((s for s in timings if s != "total"), key=lambda s: (order.index(s) if s in order else 99, s))
    stages = [{"stage": s, "seconds": f"{timings[s]:.2f}", "load": f"{loads.get(s, 0.0):.2f}" if s in loads else "",
               "compute": f"{timings[s] - loads.get(s, 0.0):.2f}"} for s in named]
    if "total" in timings:
        stages.append({"stage": "total", "seconds": f"{timings['total']:.2f}",
                       "load": f"{sum(loads.values()):.2f}" if loads else "",
                       "compute": f"{compute_seconds(record):.2f}"})
    per_class_acc = [{"name": classes[i] if i < len(classes) else str(i), "top1": "-" if v is None else f"{v:.1f}"}
                     for i, v in enumerate(metrics.get("per_class") or [])]
    info = record.get("classifier") or {}
    curve = plots.training_curves(info.get("loss_curve") or [], info.get("val_curve") or [],
                                  site.out / "cells" / "plots" / f"{key}.svg")
    generation = record.get("generation") or {}
    filt = generation.get("filter")
    images = sets.generated_images(workdir, record)
    gallery = []
    for label, name in enumerate(classes):
        mine = [g for g in images if g.label == label][:per_class]
        if mine:
            gallery.append({"name": name, "images": [thumb(site, g, key, prefix="../") for g in mine]})
    quality = None
    qpath = None
    if record.get("artifacts", {}).get("generate"):
        from ..quality.compute import quality_path

        qpath = quality_path(workdir, record["artifacts"], (spec.get("inputs") or {}).get("clip", ""))
    if qpath is not None and qpath.is_file():
        import json

        quality = json.loads(qpath.read_text())
    env = record.get("environment") or {}
    html = render(
        "cell.html", title=f"{spec['method']} / {spec['dataset']} / seed {spec['seed']} / {spec['setting']}",
        nav=[("Report", "../index.html")], key=key, spec=spec, metrics=metrics, finished=result["finished"],
        stages=stages, per_class=per_class_acc, classifier={k: v for k, v in info.items()
                                                            if k not in ("loss_curve", "val_curve")},
        curve=f"plots/{curve.name}" if curve else None, generation={k: v for k, v in generation.items()
                                                                    if not isinstance(v, dict)},
        filter=filt, gallery=gallery, quality=quality, provenance=record.get("provenance") or {},
        artifacts=record.get("artifacts") or {}, env=env, notes=record.get("method_notes"),
        peak=record.get("peak_memory_mb") or {}, reused=record.get("reused") or {})
    return site.write(cell_href(key), html)
