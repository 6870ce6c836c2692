import json

from typer.testing import CliRunner

from datadream_bench.cli.datasets_cmd import app


def test_check_prints_report_and_fingerprint(make):
    _, options = make("dtd", "csv")
    args = ["check", "--dataset", "dtd", "--data-root", str(options.data_root), "--shots", "1,2",
            "--seeds", "0,1", "--work-dir", str(options.work_dir), "-o", "source=csv"]
    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] and report["classes"] == 47 and report["source"] == "csv"
    assert set(report["fewshot"]["1"]) == {"1", "2"}
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and report["fingerprint"] in table.stdout


def test_usage_errors_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["check", "--dataset", "nope", "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown dataset" in result.stderr
