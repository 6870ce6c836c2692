import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from builders import LAYOUTS  # noqa: E402

from datadream_bench.datasets.adapter import DatasetOptions  # noqa: E402
from datadream_bench.datasets.paper import PaperDataset  # noqa: E402
from datadream_bench.datasets.registry import DATASETS  # noqa: E402


@pytest.fixture
def data_dir(tmp_path):
    """A scratch folder on tmpfs where there is one: these tests write thousands of tiny files, and removing them
    from a busy disk costs more than the tests; removed at the end of each test."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="dd-bench-datasets-", dir=shm)) if os.access(shm, os.W_OK) else tmp_path
    yield base
    if base != tmp_path:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make(data_dir):
    """make(key, layout) -> (adapter, options) for a fresh tiny copy under data_dir."""
    tmp_path = data_dir

    def build(key: str, layout: str, **extra):
        root = tmp_path / layout / key
        options = dict(LAYOUTS[layout](key, root))
        options.update(extra)
        return PaperDataset(DATASETS[key]), DatasetOptions(root, tmp_path / "work" / layout / key, options)

    return build
