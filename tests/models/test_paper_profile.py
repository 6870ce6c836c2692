"""The paper profile end to end on checkpoints laid out as a researcher's Hugging Face cache holds them (CLIP as
pytorch_model.bin only, SD with fp16 variants, BLIP and the filter CLIP of DISEF's defaults), every installed
method, with image counts, steps and epochs shrunk by --set so that it runs in CI."""

import json

import pytest
import torch
from builders import build_coop
from hub_cache import BLIP, CLIP, CLIP_H, SD, snapshot
from typer.testing import CliRunner

from datadream_bench.cli.main import app
from datadream_bench.models import loading
from datadream_bench.plugins import load_registry
from datadream_bench.store import ResultsStore

# Every knob that sets how much work a cell does, at its smallest; the models and everything else stay the paper's.
SHRINK = ["images_per_class=1", "num_inference_steps=2", "epochs=1", "filter_max_attempts=1", "filter_class_budget=1",
          "classifier.epochs=1", "classifier.budget_images_per_class=1", "classifier.eval_every=1",
          # da-fusion: token steps and images per shot; loft: one LoRA per image at one shot
          "steps=1", "images_per_shot=1", "loras_per_image=1", "fusion_weights=[1.0]"]


def paper_run(data_root, work_dir, *extra):
    args = ["run", "--profile", "paper", "--method", "all", "--dataset", "eurosat", "--data-root", str(data_root),
            "--shots", "1", "--seeds", "0", "-w", str(work_dir), "--json", *extra]
    for pair in SHRINK:
        args += ["--set", pair]
    return CliRunner().invoke(app, args)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are all per-call overhead: one thread is as fast, and on a busy 2-core machine it avoids
    threads spinning against each other (10x slower there with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def eurosat(tmp_path):
    build_coop("eurosat", tmp_path / "data")
    return tmp_path / "data"


def test_paper_profile_runs_every_method_on_a_hub_cache(hub, eurosat, tmp_path):
    loading._LOADED.clear()
    result = paper_run(eurosat, tmp_path / "work")
    assert result.exit_code == 0, result.output
    cells = json.loads(result.stdout)["cells"]
    assert {c["method"] for c in cells} == set(load_registry().methods)  # every installed method
    assert [c for c in cells if c["status"] != "done"] == []

    store = ResultsStore(tmp_path / "work" / "results.sqlite")
    records = {(c["method"], c["setting"]): store.record(c["key"]) for c in cells}
    for record in records.values():
        assert record["spec"]["profile"] == "paper" and record["spec"]["clip_model"] == CLIP
        clip = record["provenance"]["models"]["clip"]
        assert clip["weights"] == ["pytorch_model.bin"] and clip["revision"] == snapshot(hub, CLIP).name
    sd = records[("datadream-cls", "synthetic")]["provenance"]["models"]["sd"]
    assert sd["repo_id"] == SD and sd["variant"] is None  # fp32 on CPU: the full-precision files
    disef = records[("disef", "synthetic")]
    assert disef["spec"]["method_config"]["captioner"] == "blip"
    assert disef["provenance"]["models"]["captioner_model"]["repo_id"] == BLIP
    assert disef["provenance"]["models"]["filter_model"]["repo_id"] == CLIP_H


def test_paper_profile_with_a_weight_file_gone_stops_before_any_model_loads(hub_copy, eurosat, tmp_path,
                                                                            forbid_model_loads):
    link = snapshot(hub_copy, CLIP) / "pytorch_model.bin"
    link.resolve().unlink()
    result = paper_run(eurosat, tmp_path / "work")
    assert result.exit_code == 2, result.output
    message = result.output.replace("\n", "")  # the console folds long lines
    assert f"--clip-model '{CLIP}'" in message and f"{link}: a link to" in message
    assert not (tmp_path / "work" / "results.sqlite").exists()
