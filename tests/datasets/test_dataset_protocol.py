import pytest

from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.errors import UsageError


def test_standard_protocol_tests_on_test_and_selects_on_val(make):
    adapter, options = make("eurosat", "coop")
    manifest, report = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert manifest.protocol == "standard" and report["protocol"] == "standard"
    assert {s.path for s in manifest.split("test")}.isdisjoint(s.path for s in manifest.split("train"))


def test_released_protocol_reproduces_the_reference_splits(make):
    adapter, options = make("eurosat", "coop")
    standard, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    options.extra["protocol"] = "datadream-released"
    parity, report = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert parity.protocol == "datadream-released"
    assert parity.split("test") == standard.split("train")  # evaluated on train rows (no overlap error)
    assert parity.split("val") == standard.split("test")  # selected on test
    assert any("PARITY" in n for n in report["notes"])
    assert parity.fingerprint() != standard.fingerprint()


def test_released_protocol_elsewhere_only_selects_on_test(make):
    adapter, options = make("pets", "coop", protocol="datadream-released")
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert manifest.split("val") == manifest.split("test")


def test_released_protocol_has_no_imagenet_form(tmp_path):
    from datadream_bench.datasets.protocol import apply

    with pytest.raises(UsageError, match="ImageNet"):
        apply("imagenet", "datadream-released", {})
