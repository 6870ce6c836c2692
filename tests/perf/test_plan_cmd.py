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


def test_a_set_shared_by_every_shot_count_is_counted_once():
    out = plan_json("-m", "zero-shot-sd,datadream-cls", "-d", "eurosat", "--shots", "4,16", "--seeds", "0")
    rows = {(r["method"], r["shots"]): r for r in out["rows"]}
    first, second = rows["zero-shot-sd", 4], rows["zero-shot-sd", 16]
    assert first["images"] == 10 * 500 and second["images"] == 0 and second["flops"]["generate"] == 0
    assert second["flops"]["classifier"] > 0  # its classifiers still train, on the shared set
    assert rows["datadream-cls", 4]["images"] == rows["datadream-cls", 16]["images"] == 10 * 500


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


def test_img2img_strength_comes_from_each_method_cost_hook():
    out = plan_json("-m", "issynth,disef", "-d", "eurosat", "--seeds", "0", "--shots", "4,16")
    rows = {(r["method"], r["shots"]): r for r in out["rows"]}
    per_image = {key: r["flops"]["generate"] / r["images"] for key, r in rows.items()}
    # issynth: 50 steps at its shot-count strength (0.35 at 4 shots, 0.15 at 16), guidance 3
    assert per_image[("issynth", 4)] == pytest.approx(costs.image_flops(costs.Generation(50, 3.0, 0.35)))
    assert per_image[("issynth", 16)] == pytest.approx(costs.image_flops(costs.Generation(50, 3.0, 0.15)))
    # disef: 20 DPM-Solver++ steps at 0.75 whatever the shots, guidance 8
    assert per_image[("disef", 4)] == per_image[("disef", 16)] == pytest.approx(
        costs.image_flops(costs.Generation(20, 8.0, 0.75)))


def test_dataset_all_plans_what_run_dataset_all_runs():
    # the paper's ten (needing no data root to plan), not the built-in demo; the demo is planned when named
    out = plan_json("-m", "zero-shot-sd", "-d", "all", "--seeds", "0", "--rate", "100")
    datasets = {r["dataset"] for r in out["rows"]}
    assert "imagenet" in datasets and "demo-digits" not in datasets and len(datasets) == 10
    demo = plan_json("-m", "zero-shot-sd", "-d", "demo-digits", "--seeds", "0", "--rate", "100")
    assert [r["dataset"] for r in demo["rows"]] == ["demo-digits"]


def test_a_method_without_a_cost_hook_is_counted_from_the_default_plan_or_noted():
    from datadream_bench import api

    class Plain(api.Method):
        name = "plain"

        class Config(api.MethodConfig):
            images_per_class: int = api.Field(7, description="images per class")

        def sample(self, ctx, sampler, batch):
            return sampler.text_to_image(batch, num_inference_steps=3, guidance_scale=1.0)

    cost = Plain().cost(Plain.Config(), classes=10, shots=4)
    assert cost.images == 70 and cost.steps == 50 and any("num_inference_steps" in n for n in cost.notes)


def test_disk_is_an_upper_bound_of_the_generated_pngs():
    import io

    import numpy as np
    from PIL import Image

    out = plan_json("-m", "zero-shot-sd,da-fusion,real-only", "-d", "eurosat", "--seeds", "0,1")
    rows = {r["method"]: r for r in out["rows"]}
    for name in ("zero-shot-sd", "da-fusion"):
        assert rows[name]["disk_bytes"] == rows[name]["images"] * costs.png_bytes_at_most() > 0
    assert rows["real-only"]["disk_bytes"] == 0
    assert out["total"]["disk_bytes"] == sum(r["disk_bytes"] for r in out["rows"])
    # The bound holds for what compresses worst: noise, saved as the generation stage saves images.
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(buf, "PNG")
    assert 512 * 512 * 3 < len(buf.getvalue()) <= costs.png_bytes_at_most(512)
    assert "disk GB" in invoke("-m", "zero-shot-sd", "-d", "eurosat", "--seeds", "0").stdout
