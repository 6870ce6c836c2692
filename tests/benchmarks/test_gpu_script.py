"""benchmarks/gpu.py on tiny models on the CPU: every stage runs and the JSON has what `dd-bench plan` reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # about 20-40 s: every stage of the script, twice the imports of a fresh process
def test_gpu_script_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "tiny.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["tiny"] is True and record["device"] == "cpu"
    assert record["machine"]["torch"] and "commit" in record
    r = record["results"]
    for stage in ("generation", "sd_lora_train", "clip_lora_train"):
        assert r[stage]["achieved_tflops"] > 0 and r[stage]["mfu"] > 0, stage
    g = r["generation"]
    assert g["images"] == 4 and g["reference"]["images"] == 2 and g["speedup_vs_reference"] > 0
    assert g["flops_per_image"] == 2 * 2 * g["flops_parts"]["unet_forward"] + g["flops_parts"]["vae_decode"] + \
        2 * g["flops_parts"]["text_forward"]
    assert g["fast_path"]["attention"]["unet"] == "AttnProcessor2_0"
    assert r["loader"]["images_per_s"] > 0 and r["loader"]["over_train_step"] > 0
    assert "generation:" in proc.stdout and "MFU" in proc.stdout


def test_gpu_script_refuses_paper_sizes_without_cuda(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--out", str(tmp_path / "x.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--tiny" in proc.stderr
