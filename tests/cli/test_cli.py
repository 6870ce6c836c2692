"""The command line as a user meets it: exit codes, plugins installed as distributions, JSON on stdout."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from datadream_bench.cli.main import app

FIXTURES = Path(__file__).parents[1] / "fixtures"


def dd_bench(*args, env=None, cwd=None):
    """Run the installed command in a fresh process, the example and broken plugin distributions on its path."""
    full_env = {**os.environ, "PYTHONPATH": str(FIXTURES / "plugins"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "datadream_bench", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)


def test_third_party_plugin_is_listed_and_runs_and_a_broken_one_is_reported(tmp_path):
    listed = dd_bench("list", "methods", "--json")
    assert listed.returncode == 0, listed.stderr
    methods = {m["name"]: m for m in json.loads(listed.stdout)}
    assert {"example-sd", "datadream-cls", "datadream-dset", "zero-shot-sd", "zero-shot-clip"} <= set(methods)
    assert methods["example-sd"]["config"]["images_per_class"]["help"] == "images generated per class"

    plugins = {p["name"]: p for p in json.loads(dd_bench("plugins", "--json").stdout)}
    assert plugins["example"]["version"] == "0.3.0" and plugins["example"]["error"] is None
    assert plugins["example"]["hooks"] == ["register_methods"]
    assert "not-installed-anywhere" in plugins["broken"]["error"]

    ran = dd_bench("run", "-m", "example-sd", "--profile", "tiny", "--seeds", "0", "--setting", "synthetic",
                   "-w", str(tmp_path), "--json")
    assert ran.returncode == 0, ran.stderr
    cells = json.loads(ran.stdout)["cells"]  # stdout holds the JSON alone
    assert [(c["method"], c["status"]) for c in cells] == [("example-sd", "done")]
    assert "cell 1/1" in ran.stderr  # progress went to stderr

    board = dd_bench("leaderboard", "-w", str(tmp_path), "--format", "json")
    assert json.loads(board.stdout)["rows"][0]["method"] == "example-sd"
    shown = dd_bench("show", cells[0]["key"][:8], "-w", str(tmp_path), "--json")
    assert json.loads(shown.stdout)["spec"]["method"] == "example-sd"
    summary = dd_bench("show", cells[0]["key"][:8], "-w", str(tmp_path), env={"COLUMNS": "200"})
    assert "example-sd" in summary.stdout and "time per stage" in summary.stdout and "top-1 (test)" in summary.stdout


def test_plugin_allow_and_block_lists():
    only_example = dd_bench("plugins", "--json", env={"DD_BENCH_LOAD_PLUGINS": "example"})
    names = {p["name"] for p in json.loads(only_example.stdout) if not p["builtin"]}
    assert names == {"example"}
    blocked = dd_bench("plugins", "--json", env={"DD_BENCH_DISABLE_PLUGINS": "broken,datadream"})
    names = {p["name"] for p in json.loads(blocked.stdout)}
    assert "broken" not in names and "datadream" not in names and "example" in names
    none = dd_bench("plugins", "--json", env={"DD_BENCH_LOAD_PLUGINS": ""})
    assert all(p["builtin"] for p in json.loads(none.stdout))


def test_help_works_even_with_a_broken_plugin():
    result = dd_bench("--help")
    assert result.returncode == 0 and "leaderboard" in result.stdout


def test_unknown_method_lists_the_valid_ones_and_exits_2_before_any_model_loads(tmp_path, forbid_model_loads):
    result = CliRunner().invoke(app, ["run", "-m", "datadream-clz", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown method 'datadream-clz'" in result.output and "datadream-cls" in result.output


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["run", "-m", "zero-shot-sd", "--set", "bogus=1", "-w", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["run", "-m", "zero-shot-sd", "--seeds", "a,b", "-w", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["run", "--bad-flag"]).exit_code == 2
    assert runner.invoke(app, ["leaderboard", "-w", str(tmp_path / "nothing")]).exit_code == 2


def test_a_failed_cell_exits_1_and_the_others_still_run(tmp_path, example_plugin, monkeypatch):
    import dd_bench_example

    def broken(self, ctx, sampler, batch):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(dd_bench_example.ExampleMethod, "sample", broken)
    result = CliRunner().invoke(app, ["run", "-m", "example-sd,zero-shot-clip", "--profile", "tiny", "--seeds", "0",
                                      "--setting", "synthetic", "-w", str(tmp_path), "--json"])
    assert result.exit_code == 1
    statuses = {c["method"]: c["status"] for c in json.loads(result.stdout)["cells"]}
    assert statuses == {"example-sd": "failed", "zero-shot-clip": "done"}, result.stdout
