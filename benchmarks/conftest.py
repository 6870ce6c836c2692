"""pytest-benchmark runs of the CPU comparisons: `python -m pytest benchmarks -q` (not part of the test suite).

Each test times one side-by-side comparison with pytest-benchmark and puts the measured ratio and the output check
in the benchmark's extra_info (`--benchmark-json out.json` keeps them). Sizes follow DD_BENCH_FAST=1 (CI mode).
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def sizes():
    from cpu import SIZES

    return SIZES["fast" if os.environ.get("DD_BENCH_FAST") == "1" else "full"]


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory):
    from datadream_bench.models.tiny import save_tiny_sd

    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "sd", seed=0)
