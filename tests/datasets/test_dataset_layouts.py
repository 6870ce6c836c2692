"""Each of the ten datasets, built in every layout it comes in, gives CoOp's classes in CoOp's order, the split
sizes it was built with, and - where the split is the same - one content fingerprint."""

import pytest
from builders import CSV_KEYS, KEYS, coop_names, expected_sizes

from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.registry import DATASETS


@pytest.mark.parametrize("key", KEYS)
def test_every_layout_reads_the_same_dataset(make, key):
    layouts = ["coop", "torchvision", "hf", "folder"] + (["csv"] if key in CSV_KEYS else [])
    fingerprints = {}
    for layout in layouts:
        adapter, options = make(key, layout)
        manifest, report = prepare_dataset(adapter, options, shots=(1, 2) if key != "imagenet" else (1,),
                                           seeds=(0, 1), decode="fewshot")  # the zoo tests full decoding
        assert manifest.source == layout
        assert list(manifest.classes) == coop_names(key), layout
        assert len(manifest.classes) == DATASETS[key].num_classes
        assert {k: len(v) for k, v in manifest.splits.items()} == expected_sizes(key), layout
        assert report["valid"] and report["fingerprint"] == manifest.fingerprint()
        assert set(report["fewshot"]) == {"0", "1"}
        fingerprints[layout] = manifest.fingerprint()
    # CoOp, CSV, HF and plain folders were built from one split: the same content, the same fingerprint.
    same_split = {fingerprints[x] for x in ("coop", "csv", "hf", "folder") if x in fingerprints}
    assert len(same_split) == 1, fingerprints
