"""benchmarks/cpu.py in CI mode: every comparison runs and both sides of each produce the same output.

Speed ratios are reported by the script, never asserted here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cpu_script_runs_and_both_sides_agree(tmp_path):
    out = tmp_path / "cpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cpu.py"), "--fast", "--out", str(out)],
                          cwd=tmp_path, env={**os.environ, "DD_BENCH_FAST": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())["results"]
    assert r["generation"]["max_pixel_diff"] <= 1 and r["generation"]["images"] > 0
    assert r["lora_step"]["max_abs_diff"] < 1e-4
    assert r["loader"]["identical_batches"]
    assert r["text"]["max_abs_diff"] < 1e-5 and r["text"]["tokens"] < r["text"]["context"]
    assert r["lora_mix"]["one_zero_equals_one"]
    assert "| engine vs reference-style loop" in proc.stdout  # the table a person reads
