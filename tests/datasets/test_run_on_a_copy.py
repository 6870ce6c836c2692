"""A paper dataset, given as a CoOp-layout copy under --data-root, runs end to end on tiny models."""

import json

from builders import build_coop
from typer.testing import CliRunner

from datadream_bench.cli.main import app
from datadream_bench.runner.workdir import WorkDir


def test_eurosat_coop_copy_runs_end_to_end(data_dir, tmp_path):
    build_coop("eurosat", data_dir / "data")
    result = CliRunner().invoke(app, [
        "run", "-m", "zero-shot-sd,real-only", "--dataset", "eurosat", "--data-root", str(data_dir / "data"),
        "--profile", "tiny", "--shots", "1", "--seeds", "0", "--setting", "synthetic", "-w", str(tmp_path), "--json",
    ])
    assert result.exit_code == 0, result.output
    cells = json.loads(result.stdout)["cells"]
    assert {(c["method"], c["dataset"], c["status"]) for c in cells} == {
        ("zero-shot-sd", "eurosat", "done"), ("real-only", "eurosat", "done")}
    shown = CliRunner().invoke(app, ["show", cells[0]["key"], "-w", str(tmp_path), "--json"])
    record = json.loads(shown.stdout)
    assert record["provenance"]["dataset"]["source"] == "coop"
    assert record["provenance"]["dataset"]["classes"] == 10
    # the dataset's prompt word reached the generator: "a satellite photo of a <class>"
    manifest = WorkDir(tmp_path).generated("zero-shot-sd", record["artifacts"]["generate"]) / "manifest.jsonl"
    prompts = {json.loads(line)["prompt"] for line in manifest.read_text().splitlines()}
    assert len(prompts) == 10 and all(p.startswith("a satellite photo of a ") for p in prompts)
    # ...with DataDream's class names, which the record keeps, as it keeps the classifier head's prompts
    assert "a satellite photo of a AnnualCrop" in prompts and "a satellite photo of a SeaLake" in prompts
    assert record["provenance"]["dataset"]["names"] == "datadream"
    real = json.loads(CliRunner().invoke(app, ["show", cells[1]["key"], "-w", str(tmp_path), "--json"]).stdout)
    assert real["classifier"]["prompts"][0] == "a satellite photo of a AnnualCrop"
