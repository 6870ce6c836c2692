"""User text (method, class, dataset, folder names, error messages) prints as written: rich markup or an emoji code
in it is never interpreted and never crashes a printer (show, results, leaderboard, datasets check, the failure
reporter of a run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from datadream_bench.cli.main import app
from datadream_bench.store import ResultsStore

sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))
from builders import build_coop  # noqa: E402

HOSTILE = "[/bold]m[/x] [red]:smile:"


def hostile_record(key: str) -> tuple[dict, dict]:
    spec = {"method": f"method {HOSTILE}", "dataset": f"data {HOSTILE}", "shots": 4, "seed": 0,
            "setting": "synthetic", "classifier": "clip-lora", "profile": "tiny",
            "method_config": {"prompt": f"a photo of {HOSTILE}"}}
    record = {
        "cell_key": key, "spec": spec, "metrics": {"top1": 50.0, "n": 10}, "timings_s": {"total": 1.0},
        "artifacts": {"generate": "abc"},
        "generation": {"images": 2, "filter": {
            "settings": f"filter {HOSTILE}",
            "per_class": {f"class {HOSTILE}": {"candidates": 2, "accepted": 1, "rejected": 1, "forced": 0,
                                               "acceptance_rate": 0.5, "filter_seconds": 0.1}},
            "total": {"candidates": 2, "accepted": 1, "rejected": 1, "forced": 0, "acceptance_rate": 0.5,
                      "filter_seconds": 0.1}}},
        "environment": {"git_commit": "abc", "python": "3", "packages": {"torch": "2"},
                        "hardware": f"cpu {HOSTILE}"},
    }
    return spec, record


def test_show_results_and_leaderboard_print_markup_as_written(tmp_path):
    spec, record = hostile_record("feedbeef")
    ResultsStore(tmp_path / "results.sqlite").add(spec, "feedbeef", 50.0, record)
    runner = CliRunner()
    for args in (["show", "feed"], ["results"], ["leaderboard"], ["leaderboard", "--format", "md"]):
        result = runner.invoke(app, [*args, "-w", str(tmp_path)], env={"COLUMNS": "300"})
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "[/bold]m[/x]" in result.output and ":smile:" in result.output, (args, result.output)
    shown = runner.invoke(app, ["show", "feed", "-w", str(tmp_path)], env={"COLUMNS": "300"}).output
    assert f"class {HOSTILE}" in shown and f"cpu {HOSTILE}" in shown


def test_a_failure_message_with_markup_is_reported_and_the_grid_goes_on(tmp_path, example_plugin, monkeypatch):
    import dd_bench_example

    def broken(self, ctx, sampler, batch):
        raise RuntimeError(f"simulated crash {HOSTILE}")

    monkeypatch.setattr(dd_bench_example.ExampleMethod, "sample", broken)
    result = CliRunner().invoke(app, ["run", "-m", "example-sd,zero-shot-clip", "--profile", "tiny", "--seeds", "0",
                                      "--setting", "synthetic", "-w", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, (result.output, result.exception)
    assert f"simulated crash {HOSTILE}" in result.output  # in the reporter's line and the closing list
    assert "1 done, 0 already finished, 1 failed" in result.output


def test_datasets_check_prints_folder_and_file_names_as_written(tmp_path):
    root = tmp_path / "copy [/bold] :smile:"
    build_coop("eurosat", root)
    split_file = next(root.rglob("split_zhou_*.json"))
    split = json.loads(split_file.read_text())
    split["train"].append(["[/red]missing.jpg", 0, split["train"][0][2]])
    split_file.write_text(json.dumps(split))
    result = CliRunner().invoke(app, ["datasets", "check", "--dataset", "eurosat", "--data-root", str(root),
                                      "--shots", "1", "--work-dir", str(tmp_path / "work")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 2, (result.output, result.exception)
    assert "[/red]missing.jpg" in result.output and "copy [/bold] :smile:" in result.output, result.output
