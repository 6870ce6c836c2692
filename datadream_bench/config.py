"""Typed configs: paper defaults, replaced by a profile's defaults, replaced by the user's --set overrides."""

from __future__ import annotations

import math
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import UsageError


def parse_overrides(pairs: list[str], option: str = "--set") -> dict[str, Any]:
    """["epochs=3", "lr=1e-3"] -> {"epochs": 3, "lr": 0.001}. Values are YAML scalars (safe_load), so types come out right."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {pair!r}: expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise UsageError(f"{option} {pair!r}: cannot read the value ({e})") from None
        out[key.strip()] = _number(value) if isinstance(value, str) else value
    return out


def _number(text: str):
    """YAML 1.1 reads "1e-3" (no dot) as a string; a learning rate written that way is meant as a number."""
    try:
        return float(text) if text.strip().lower() not in ("nan", "inf", "-inf", "infinity") else text
    except ValueError:
        return text


def resolve_config(owner: str, config_cls: type[BaseModel], profile_defaults: dict[str, dict], profile: str,
                   overrides: dict[str, Any]) -> BaseModel:
    """The config of `owner` (a method or classifier name) under `profile`, with overrides; validated here, once."""
    values = dict(profile_defaults.get(profile, {}))
    values.update(overrides)
    unknown = sorted(set(values) - set(config_cls.model_fields))
    if unknown:
        raise UsageError(f"{owner}: unknown setting(s) {', '.join(unknown)}; {owner} has: {describe_fields(config_cls)}")
    try:
        config = config_cls(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {err.get('input')!r})"
                             for err in e.errors())
        raise UsageError(f"{owner}: invalid setting(s): {problems}") from None
    for name, value in config.model_dump().items():
        if _out_of_range(value):
            raise UsageError(f"{owner}: invalid setting {name}={value!r}: expected a finite number that fits in "
                             "64 bits")
    return config


def _out_of_range(value) -> bool:
    """A number no tensor, random generator or SQLite column takes, anywhere in a (nested) setting: the bound of last
    resort for configs whose fields declare none."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -2**63 <= value < 2**63
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_out_of_range(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_out_of_range(v) for v in value)
    return False


def describe_fields(config_cls: type[BaseModel]) -> str:
    return ", ".join(sorted(config_cls.model_fields)) or "(no settings)"


def route_overrides(overrides: dict[str, Any], method_configs: dict[str, type[BaseModel]],
                    classifier: str) -> tuple[dict[str, dict], dict]:
    """Send each override to the configs it addresses: (per-method overrides, classifier overrides).

    "classifier.epochs=3" (or "<classifier name>.epochs=3") goes to the classifier; "<method>.key=v" to that method;
    a bare "key=v" to every selected method whose config has that key, and is an error if none has it.
    """
    per_method: dict[str, dict] = {m: {} for m in method_configs}
    for_classifier: dict[str, Any] = {}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot and head in ("classifier", classifier):
            for_classifier[rest] = value
        elif dot and head in per_method:
            per_method[head][rest] = value
        elif dot:
            raise UsageError(f"--set {key}: {head!r} is neither 'classifier' nor a selected method "
                             f"({', '.join(method_configs)})")
        else:
            takers = [m for m, cls in method_configs.items() if key in cls.model_fields]
            if not takers:
                raise UsageError(f"--set {key}: no selected method has a setting {key!r} "
                                 f"(use classifier.{key} for the classifier)")
            for m in takers:
                per_method[m][key] = value
    return per_method, for_classifier
