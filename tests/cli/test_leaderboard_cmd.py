"""`dd-bench leaderboard` on a real store: experiments kept apart, planned cells marked missing, every format."""

import json
import sqlite3

from typer.testing import CliRunner

from datadream_bench.cli.main import app


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_two_configs_give_two_rows_and_a_deleted_result_shows_missing(tmp_path):
    w = str(tmp_path)
    invoke("run", "-m", "real-only", "--profile", "tiny", "--seeds", "0,1", "-w", w)
    invoke("run", "-m", "real-only", "--profile", "tiny", "--seeds", "0", "--set", "classifier.lr=0.002", "-w", w)

    rows = json.loads(invoke("leaderboard", "-w", w, "-f", "json"))["rows"]
    assert sorted((r["differs"], r["datasets"]["demo-digits"]["n"]) for r in rows) == [
        ("classifier.lr=0.001", 2), ("classifier.lr=0.002", 1)]

    with sqlite3.connect(tmp_path / "results.sqlite") as db:  # one seed's result is lost
        db.execute("DELETE FROM results WHERE seed = 1")
    data = json.loads(invoke("leaderboard", "-w", w, "-f", "json"))
    first = next(r for r in data["rows"] if r["differs"] == "classifier.lr=0.001")
    assert first["datasets"]["demo-digits"]["missing_seeds"] == [1]
    assert any("seed 1 missing" in n for n in data["notes"])
    table = " ".join(invoke("leaderboard", "-w", w).split())  # the terminal's width wraps lines anywhere
    assert "seed 1 missing" in table

    latex = invoke("leaderboard", "-w", w, "-f", "latex")
    assert "\\begin{tabular}" in latex and "classifier.lr=0.002" in latex
    page = invoke("leaderboard", "-w", w, "-f", "html", "--ci")
    assert "<table" in page and "95% confidence interval" in page


def test_reference_file_rows_and_errors(tmp_path):
    w = str(tmp_path)
    invoke("run", "-m", "zero-shot-clip", "--profile", "tiny", "--seeds", "0", "-w", w)
    refs = tmp_path / "published.csv"
    refs.write_text("method,dataset,shots,setting,top1,source\nzero-shot-clip,demo-digits,2,none,12.5,a paper\n")
    md = invoke("leaderboard", "-w", w, "-f", "md", "--reference", str(refs))
    assert "zero-shot-clip (published: a paper)" in md and "12.5" in md
    refs.write_text("method,dataset,shots,setting,top1,source\nzero-shot-clip,demo-digits,2,none,high,a paper\n")
    bad = CliRunner().invoke(app, ["leaderboard", "-w", w, "--reference", str(refs)])
    # the console wraps long lines anywhere (the path's length varies): compare without whitespace
    assert bad.exit_code == 2 and "published.csv:2:top1'high'isnotanumber" in "".join(bad.output.split())
