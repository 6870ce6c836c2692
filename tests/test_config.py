"""Config resolution: paper defaults < profile defaults < --set overrides, validated once with a clear message."""

import pytest
from pydantic import BaseModel, Field

from datadream_bench.config import parse_overrides, resolve_config, route_overrides
from datadream_bench.errors import UsageError


class Conf(BaseModel):
    images_per_class: int = Field(500, ge=1)
    lr: float = 1e-4
    text_lora: bool = True


def test_values_are_typed_yaml_scalars():
    assert parse_overrides(["lr=1e-3", "images_per_class=40", "text_lora=false", "name=a b"]) == {
        "lr": 1e-3, "images_per_class": 40, "text_lora": False, "name": "a b"}


def test_malformed_pair_is_a_usage_error():
    with pytest.raises(UsageError, match="expected key=value"):
        parse_overrides(["lr"])


def test_profile_then_overrides():
    conf = resolve_config("m", Conf, {"demo": {"images_per_class": 40, "lr": 3e-3}}, "demo", {"lr": 1e-2})
    assert (conf.images_per_class, conf.lr, conf.text_lora) == (40, 1e-2, True)
    assert resolve_config("m", Conf, {"demo": {"images_per_class": 40}}, "paper", {}).images_per_class == 500


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown setting.*epochs.*has: images_per_class, lr, text_lora"):
        resolve_config("m", Conf, {}, "paper", {"epochs": 3})


def test_invalid_value_names_the_field_and_value():
    with pytest.raises(UsageError, match="images_per_class.*got 0"):
        resolve_config("m", Conf, {}, "paper", {"images_per_class": 0})


def test_routing():
    per_method, classifier = route_overrides(
        {"lr": 1, "b.text_lora": False, "classifier.epochs": 3, "clip-lora.batch_size": 8},
        {"a": Conf, "b": Conf}, "clip-lora")
    assert per_method == {"a": {"lr": 1}, "b": {"lr": 1, "text_lora": False}}
    assert classifier == {"epochs": 3, "batch_size": 8}
    with pytest.raises(UsageError, match="no selected method has a setting 'epochs'"):
        route_overrides({"epochs": 3}, {"a": Conf}, "clip-lora")
    with pytest.raises(UsageError, match="'zz' is neither"):
        route_overrides({"zz.lr": 3}, {"a": Conf}, "clip-lora")
