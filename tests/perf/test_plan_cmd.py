"""`dd-bench plan`: images, FLOPs and GPU time of a grid from the registries and the methods' configs."""

import json

import pytest
import typer
from typer.testing import CliRunner

from datadream_bench.cli.plan_cmd import plan
from datadream_bench.perf import costs, flops

app = typer.Typer()
app.command("plan")(plan)


@app.callback()
def _root():
    """Mounted as a sub-command, as in cli.main."""


def invoke(*args):
    result = CliRunner().invoke(app, ["plan", *args])
    return result


def plan_json(*args):
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eurosat_datadream_cells_count_every_stage():
    out = plan_json("-m", "datadream-cls,zero-shot-sd,zero-shot-clip", "-d", "eurosat", "--seeds", "0,1")
    rows = {r["method"]: r for r in out["rows"]}
    cls = rows["datadream-cls"]
    assert cls["classes"] == 10 and cls["seeds"] == 2
    assert cls["images"] == 2 * 10 * 500  # paper: 500 images per class
    image = costs.image_flops(costs.Generation(steps=50, guidance_scale=2.0))
    assert cls["flops"]["generate"] == pytest.approx(2 * 10 * 500 * image)
    # 16 shots, batch 8, 200 epochs: 400 LoRA steps per class
    assert cls["adapt_steps"] == 2 * 10 * 400
    assert cls["flops"]["adapt"] == pytest.approx(2 * 10 * 200 * 16 * costs.sd_lora_step_flops(1))
    assert rows["zero-shot-sd"]["flops"]["adapt"] == 0
    assert rows["zero-shot-sd"]["flops"]["generate"] == cls["flops"]["generate"]
    zs = rows["zero-shot-clip"]
    assert zs["images"] == 0 and zs["classifier_steps"] == 0 and 0 < zs["flops"]["classifier"]
    assert "assumed" in out["rate_source"]


def test_rate_on_the_command_line_sets_the_time_and_is_named():
    out = plan_json("-m", "zero-shot-sd", "-d", "dtd", "--seeds", "0", "--rate", "100")
    row = out["rows"][0]
    assert row["total_seconds"] == pytest.approx(row["total_flops"] / 100e12)
    assert "given on the command line" in out["rate_source"]


def test_profile_and_overrides_change_the_plan():
    paper = plan_json("-m", "zero-shot-sd", "-d", "eurosat", "--seeds", "0")["rows"][0]
    fewer = plan_json("-m", "zero-shot-sd", "-d", "eurosat", "--seeds", "0", "--set", "images_per_class=100")
    assert fewer["rows"][0]["images"] == paper["images"] // 5


def test_table_output_and_bad_input():
    result = invoke("-m", "datadream-dset", "-d", "pets", "--seeds", "0", "--rate", "300")
    assert result.exit_code == 0, result.output
    assert "datadream-dset" in result.stdout and "pets" in result.stdout and "total" in result.stdout
    bad = invoke("-m", "no-such-method", "-d", "pets")
    assert bad.exit_code == 2 and "no-such-method" in bad.output
    assert invoke("-d", "pets", "--rate", "0").exit_code == 2
    assert invoke("-d", "pets", "--device", "tpu").exit_code == 2


def test_calibration_file_from_the_gpu_benchmark(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"tiny": False, "machine": {"gpu": "NVIDIA H100 80GB HBM3"}, "results": {
        "generation": {"achieved_tflops": 400.0}, "sd_lora_train": {"achieved_tflops": 300.0},
        "clip_lora_train": {"achieved_tflops": 200.0}}}))
    out = plan_json("-m", "datadream-cls", "-d", "eurosat", "--seeds", "0", "--calibration", str(path))
    row = out["rows"][0]
    assert row["seconds"]["generate"] == pytest.approx(row["flops"]["generate"] / 400e12)
    assert row["seconds"]["adapt"] == pytest.approx(row["flops"]["adapt"] / 300e12)
    assert "H100" in out["rate_source"]
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({**json.loads(path.read_text()), "tiny": True}))
    result = invoke("-d", "eurosat", "--calibration", str(tiny))
    assert result.exit_code == 2 and "tiny" in result.output
    assert invoke("-d", "eurosat", "--calibration", str(tmp_path / "missing.json")).exit_code == 2


def test_generation_dominates_the_paper_grid():
    out = plan_json("-m", "datadream-cls", "-d", "eurosat", "--seeds", "0")
    row = out["rows"][0]
    assert 0.6 < row["flops"]["generate"] / row["total_flops"] < 0.95
    assert flops.unet_forward() > 0


def test_img2img_strength_from_the_config_or_from_the_method():
    from types import SimpleNamespace

    from datadream_bench.perf.plan import _generation

    notes = []
    fixed = _generation(SimpleNamespace(name="m"), SimpleNamespace(num_inference_steps=20, strength=0.75), 4, notes)
    assert fixed.unet_passes == 2 * 15 and fixed.img2img and not notes

    class ByShots:
        name = "by-shots"

        def strength(self, config, shots):
            return {16: 0.15, 4: 0.35}[shots]

    config = SimpleNamespace(num_inference_steps=50, guidance_scale=3.0, strength=None)
    assert _generation(ByShots(), config, 16, notes).unet_passes == 2 * 7
    assert _generation(ByShots(), config, 4, notes).unet_passes == 2 * 17
    unknown = _generation(SimpleNamespace(name="x"), config, 4, notes)
    assert unknown.unet_passes == 2 * 50 and "upper bound" in notes[-1]
