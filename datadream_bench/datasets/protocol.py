"""Evaluation protocols: which split a classifier is selected on and which it is tested on.

standard: test on the real test split (ImageNet: its official val set), select on val.
datadream-released: the splits of the released DataDream classifier, for parity checks only. It selects the best
epoch on the test split, and for EuroSAT, DTD and Flowers102 it evaluates on the *train* rows. Its ImageNet test path
crashes, so there is nothing to reproduce there. Never use it for a benchmark number.
"""

from __future__ import annotations

from ..errors import UsageError
from .manifest import Sample

PROTOCOLS = ("standard", "datadream-released")
_TEST_ON_TRAIN = ("eurosat", "dtd", "flowers102")


def apply(key: str, protocol: str, splits: dict[str, tuple[Sample, ...]]) -> tuple[dict, list[str]]:
    """The splits under the protocol, and notes saying what changed."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == "standard":
        return dict(splits), []
    if key == "imagenet":
        raise UsageError("protocol 'datadream-released' has no ImageNet form (the released code's ImageNet test "
                         "path crashes); use 'standard'")
    out = dict(splits)
    out["val"] = splits.get("test", ())
    notes = ["PARITY PROTOCOL: model selection on the test split"]
    if key in _TEST_ON_TRAIN:
        out["test"] = splits.get("train", ())
        notes.append("PARITY PROTOCOL: evaluation on the train rows (as the released code does)")
    return out, notes


def tests_on_train(key: str, protocol: str) -> bool:
    return protocol == "datadream-released" and key in _TEST_ON_TRAIN
