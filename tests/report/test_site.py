"""The report site of a real tiny grid: self-contained, every user string escaped, galleries that mark forced and
img2img images, a page per cell, quality measured, and plots (accuracy against shots from a synthetic store)."""

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from datadream_bench import leaderboard
from datadream_bench.report import plots
from datadream_bench.report.site import Site, write_plots

from .conftest import EVIL
from .test_latex import check_latex


def pages(site: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in site.rglob("*.html")}


def test_site_is_self_contained_and_escapes_user_strings(tiny_report):
    work, index = tiny_report
    site = index.parent
    found = pages(site)
    assert len(found) >= 1 + 1 + 4  # index, a gallery, a page per cell
    for path, text in found.items():
        assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
        assert "<script" not in text, f"{path} carries a script (or an unescaped class name)"
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{path} reaches outside the site"
        for ref in re.findall(r'(?:src|href)="([^"#]+)', text):
            assert (path.parent / html.unescape(ref)).is_file(), f"{path} links to a missing {ref}"
    gallery = next(t for p, t in found.items() if p.name.startswith("gallery-"))
    assert html.escape(EVIL, quote=False) in gallery and "one &amp; only" in gallery


def test_gallery_shows_shots_beside_each_method_and_marks_forced_and_init_images(tiny_report):
    work, index = tiny_report
    gallery = next(index.parent.glob("gallery-*.html")).read_text()
    sections = gallery.split('<section class="gallery-class">')[1:]
    assert len(sections) == 5  # one per class
    first = sections[0]
    assert "real shots" in first and first.count('alt="real shot of') == 2  # 2-shot draw
    for method in ("issynth", "disef", "zero-shot-sd"):
        assert f">{method}" in first
    assert "real-only" not in gallery  # generates nothing
    assert 'class="pair' in gallery and 'class="init"' in gallery  # img2img beside its init shot
    assert "thumb forced" in gallery  # disef on the tiny profile keeps forced images
    assert re.search(r'<a href="cells/[0-9a-f]{16}\.html"><figure', gallery)  # each image links to its cell


def test_index_has_the_leaderboard_quality_plots_and_cells(tiny_report):
    work, index = tiny_report
    text = index.read_text()
    assert '<table class="leaderboard" id="leaderboard">' in text and "vs real-only" in text
    assert "sample std (n−1)" in text
    quality = text.split('id="quality"')[1].split('id="galleries"')[0]
    for method in ("issynth", "disef", "zero-shot-sd"):
        assert method in quality
    assert "the real-only classifier" in quality  # the judge of class consistency
    assert (index.parent / "plots").is_dir() and list((index.parent / "plots").glob("compute-*.svg"))
    assert list((index.parent / "plots").glob("classes-*.svg"))
    assert not list((index.parent / "plots").glob("shots-*.svg"))  # one shot count: no curve to draw
    assert text.count('href="cells/') >= 4


def test_cell_page_says_config_times_filter_and_per_class_accuracy(tiny_report):
    work, index = tiny_report
    cells = pages(index.parent / "cells")
    disef = next(t for t in cells.values() if "<h1>disef" in t)
    assert "Time per stage" in disef and "loading models" in disef
    assert "Filter:" in disef and "forced" in disef
    assert html.escape(EVIL, quote=False) in disef  # per-class accuracy by name
    assert "Quality of this set" in disef
    real = next(t for t in cells.values() if "<h1>real-only" in t)
    assert "Generation" not in real and "Classifier training" in real


def test_quality_is_computed_once_and_cached(tiny_report, monkeypatch):
    from datadream_bench.quality import compute
    from datadream_bench.runner.workdir import WorkDir
    from datadream_bench.store import ResultsStore

    work, _ = tiny_report
    store = ResultsStore(WorkDir(work).store)
    record = next(r["record"] for r in store.rows(with_record=True, method="issynth"))
    monkeypatch.setattr(compute, "measure", lambda *a, **k: pytest.fail("measured again"))
    q = compute.set_quality(WorkDir(work), record, store)
    assert q["feature_model"]["source"] == record["spec"]["clip_model"]
    assert q["n_generated"] == record["generation"]["images"] + record["generation"]["reused"]
    assert set(q["summary"]) >= {"fd", "precision", "recall", "density", "coverage", "vendi", "memorised",
                                 "nearest_shot_cos", "consistency"}
    assert 0.0 <= q["summary"]["consistency"] <= 1.0 and q["consistency_judge"]["key"].startswith("real-only:")


def test_leaderboard_quality_columns(tiny_report):
    from typer.testing import CliRunner

    from datadream_bench.cli.main import app

    work, _ = tiny_report
    result = CliRunner().invoke(app, ["leaderboard", "-w", str(work), "-f", "json", "--quality"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["method"]: r for r in data["quality"]["rows"]}
    assert set(rows) == {"issynth", "disef", "zero-shot-sd"}
    assert rows["issynth"]["datasets"]["named-digits"]["sets"] == 1
    assert "memorised" in data["quality"]["measures"]
    latex = CliRunner().invoke(app, ["leaderboard", "-w", str(work), "-f", "latex", "--quality"])
    check_latex(latex.stdout)
    assert "Quality of the synthetic sets on named-digits" in latex.stdout
    page = CliRunner().invoke(app, ["leaderboard", "-w", str(work), "-f", "html", "--quality"]).stdout
    assert '<table class="quality">' in page and "<script" not in page
    csv_text = CliRunner().invoke(app, ["leaderboard", "-w", str(work), "-f", "csv", "--quality"]).stdout
    assert "quality_memorised" in csv_text.splitlines()[0]


def synthetic_results():
    """A store's rows over shots 1, 2, 4, 8 and 3 seeds: what the shots-scaling grid leaves."""
    results = {}
    for method, setting, base in (("datadream-cls", "synthetic", 50.0), ("real-only", "real", 40.0)):
        for shots in (1, 2, 4, 8):
            for seed in range(3):
                key = f"{method}-{shots}-{seed}"
                spec = dict(method=method, dataset="demo-digits", shots=shots, seed=seed, setting=setting,
                            profile="demo", classifier="clip-lora", method_config={}, classifier_config={},
                            inputs={"dataset": "d", "clip": "c"}, runtime={"device": "cpu"})
                record = {"cell_key": key, "spec": spec, "timings_s": {"total": 10.0 * shots},
                          "model_load_s": {"train": 1.0}, "metrics": {"top1": base + 5 * shots + seed,
                                                                     "per_class": [base, base + 10]}}
                results[key] = {"cell_key": key, "method": method, "dataset": "demo-digits", "shots": shots,
                                "seed": seed, "setting": setting, "profile": "demo", "classifier": "clip-lora",
                                "top1": record["metrics"]["top1"], "finished": "2026-01-01", "record": record}
    return results


def test_accuracy_against_shots_appears_when_several_shot_counts_exist(tmp_path):
    results = synthetic_results()
    board = leaderboard.build(list(results.values()))
    assert "shots" in board.keys
    figures = write_plots(Site(tmp_path), board, results, {"demo-digits": ["a", "b"]})
    titles = [f["title"] for f in figures]
    assert titles == ["demo-digits: accuracy against shots", "demo-digits: accuracy against compute",
                      "demo-digits: per-class accuracy"]
    svg = (tmp_path / figures[0]["src"]).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "http://" not in svg.split("<svg", 1)[1].replace(
        "http://www.w3.org", "").replace("http://purl.org", "").replace("http://creativecommons.org", "")


def test_plots_draw_nothing_without_data(tmp_path):
    one_shot = {"m": [(4, 50.0, 1.0)]}
    assert plots.accuracy_vs_shots(one_shot, "d", tmp_path / "s.svg") is None
    assert plots.accuracy_vs_compute([], "d", "CPU", tmp_path / "c.svg") is None
    assert plots.per_class_heatmap([], [], np.zeros((0, 0)), "d", tmp_path / "h.svg") is None
    # a "$" in a name is text, not math
    path = plots.per_class_heatmap(["m $x$"], ["$a$", "b"], np.array([[10.0, np.nan]]), "d", tmp_path / "h.svg")
    assert path.is_file()


def test_records_keep_model_loading_apart_from_stage_time(tiny_report):
    from datadream_bench.report.site import compute_seconds
    from datadream_bench.runner.workdir import WorkDir
    from datadream_bench.store import ResultsStore

    work, _ = tiny_report
    for r in ResultsStore(WorkDir(work).store).rows(with_record=True):
        loads, timings = r["record"]["model_load_s"], r["record"]["timings_s"]
        assert set(loads) == set(timings) - {"total"}
        assert all(0.0 <= loads[s] <= timings[s] for s in loads)
        assert loads["train"] > 0.0  # the classifier's CLIP is loaded (or copied from memory) in every cell
        assert compute_seconds(r["record"]) == timings["total"] - sum(loads.values())


def test_report_never_overwrites_a_folder_it_did_not_write(tiny_report, tmp_path):
    from datadream_bench.errors import UsageError
    from datadream_bench.report.site import build_report

    work, _ = tiny_report
    mine = tmp_path / "my-website"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    with pytest.raises(UsageError, match="not a dd-bench report"):
        build_report(work, mine, quality=False)
    assert (mine / "index.html").read_text() == "my own page"


def test_quality_and_report_commands(tiny_report, tmp_path):
    from typer.testing import CliRunner

    from datadream_bench.cli.main import app

    work, _ = tiny_report
    result = CliRunner().invoke(app, ["quality", "-w", str(work), "--json"])
    assert result.exit_code == 0, result.output
    sets = json.loads(result.stdout)
    assert sorted(q["method"] for q in sets) == ["disef", "issynth", "zero-shot-sd"]  # real-only makes no set
    table = CliRunner().invoke(app, ["quality", "-w", str(work), "--method", "issynth"])
    assert table.exit_code == 0 and "issynth" in table.stdout and "disef" not in table.stdout
    out = tmp_path / "site"
    made = CliRunner().invoke(app, ["report", "-w", str(work), "--out", str(out), "--no-quality", "--seed", "0"])
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == str(out / "index.html") and "Not measured in this report" in (
        out / "index.html").read_text()
    assert CliRunner().invoke(app, ["report", "-w", str(tmp_path / "nothing")]).exit_code == 2
