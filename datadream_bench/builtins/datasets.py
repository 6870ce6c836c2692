"""Built-in dataset plugins: the demo digits world and the ten paper datasets."""

from __future__ import annotations

from .. import api
from ..datasets.demo import demo_dataset
from ..datasets.paper import PaperDataset
from ..datasets.registry import DATASETS


class DemoDigits(api.DatasetAdapter):
    key = "demo-digits"
    description = "scikit-learn digits 0-4 (the demo's target classes; backbones were pretrained on 5-9)"
    num_classes = 5
    needs_data_root = False

    def load(self, options: api.DatasetOptions) -> api.DatasetManifest:
        return demo_dataset(options.work_dir / "datasets" / self.key)


@api.hookimpl
def register_datasets(register):
    register(DemoDigits())
    for info in DATASETS.values():
        register(PaperDataset(info))
