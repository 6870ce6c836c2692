"""One tiny grid on a dataset whose class names a user controls (one holds a <script> tag), and its report."""

import dataclasses

import pytest

from datadream_bench import api
from datadream_bench.datasets.demo import demo_dataset
from datadream_bench.plugins import load_registry
from datadream_bench.testing import tiny_cells
from datadream_bench.runner import run_grid

EVIL = "<script>alert(1)</script> zero"
CLASSES = (EVIL, "one & only", "two", "three", "four")


class NamedDigits(api.DatasetAdapter):
    """The demo digits under class names a user chose (what a dataset plugin may hand over)."""

    key = "named-digits"
    description = "demo digits with user-chosen class names"
    num_classes = 5
    needs_data_root = False

    def load(self, options):
        manifest = demo_dataset(options.work_dir / "datasets" / "demo-digits")
        return dataclasses.replace(manifest, key=self.key, classes=CLASSES)


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory):
    """(work dir, index.html): img2img (issynth), a filter with forced images (disef), text-to-image, real-only."""
    from datadream_bench.report.site import build_report

    work = tmp_path_factory.mktemp("report-work")
    registry = load_registry()
    registry.datasets[NamedDigits.key] = NamedDigits()
    registry.owner[("datasets", NamedDigits.key)] = "tests"
    cells = tiny_cells(["issynth", "disef", "zero-shot-sd", "real-only"], work, registry,
                       datasets=[NamedDigits.key], settings=["synthetic"])
    outcome = run_grid(cells, work)
    assert not outcome.failed, [(o.spec.label(), o.error) for o in outcome.failed]
    return work, build_report(work, work / "site", device="cpu")
