"""The plugin contract, checked: when a plugin loads, when a grid is planned, and where a plugin hands back data.

Every message names the plugin (or the object's module) and says what it must provide, so a plugin author sees
"dd_bench_x: method 'y' uses the default plan(), ... add an images_per_class field" instead of an AttributeError
halfway through a grid.
"""

from __future__ import annotations

import difflib
import inspect
import types

from .errors import UsageError


class ContractError(UsageError):
    """A plugin does not keep the contract: what it registered, or what one of its hooks returned."""


def origin(obj) -> str:
    """Where an object comes from, for messages: its top-level module (the plugin's package)."""
    return (getattr(type(obj), "__module__", "") or "?").split(".")[0]


# ---- hooks ---------------------------------------------------------------------------------------------------


def hook_problems(plugin, plugin_name: str, hook_names: list[str], project: str = "dd_bench") -> list[str]:
    """Functions of a plugin module that look like hooks but will never be called: a hook name without the
    @api.hookimpl marker, or a misspelled hook name (marked or not). Plus a plugin that implements no hook at all."""
    if not isinstance(plugin, types.ModuleType):
        return []
    marker = f"{project}_impl"
    problems, marked = [], 0
    for attr, fn in vars(plugin).items():
        if not inspect.isfunction(fn):
            continue
        is_marked = hasattr(fn, marker)
        if not is_marked and getattr(fn, "__module__", None) != plugin.__name__:
            continue  # a helper imported from elsewhere
        if attr in hook_names:
            marked += is_marked
            if not is_marked:
                problems.append(f"{plugin_name}: {attr}() is not marked with @api.hookimpl, so dd-bench never calls "
                                "it; decorate it with @api.hookimpl")
        elif attr.startswith("register") or is_marked:
            close = difflib.get_close_matches(attr, hook_names, n=1)
            if close or is_marked:
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{plugin_name}: {attr}() is not a dd-bench hook{hint}; the hooks are "
                                f"{', '.join(hook_names)}")
    if not marked and not problems:
        problems.append(f"{plugin_name}: implements none of the dd-bench hooks ({', '.join(hook_names)}); "
                        "a plugin module must define at least one, marked with @api.hookimpl")
    return problems


# ---- what a plugin registers ----------------------------------------------------------------------------------


def _overrides(obj, base, name: str) -> bool:
    return getattr(type(obj), name, None) is not getattr(base, name, None)


def _fields_of(config_cls) -> set[str]:
    return set(getattr(config_cls, "model_fields", {}))


def _named(obj, plugin: str, kind: str, base: type, example: str = "...", option: str = "",
           attr: str = "name") -> tuple[str, str]:
    """(name, how errors name it) of a registered object; ContractError when it is of the wrong kind or unnamed."""
    name = getattr(obj, attr, None)
    what = f"{plugin}: {kind} {name!r}" if isinstance(name, str) and name else f"{plugin}: a {kind}"
    if not isinstance(obj, base):
        raise ContractError(f"{what} is a {type(obj).__name__}; a {kind} must subclass api.{base.__name__}")
    if not isinstance(name, str) or not name:
        used = f" (the name used with {option})" if option else ""
        raise ContractError(f"{what} ({type(obj).__name__}) has no {attr}: set the class attribute "
                            f"{attr} = \"{example}\"{used}")
    return name, what


def _identity(obj, plugin: str, kind: str, base: type, config_base: type, option: str) -> tuple[str, str, type]:
    """(name, how errors name it, Config) of a plugin's method or classifier; ContractError when one is missing."""
    name, what = _named(obj, plugin, kind, base, f"my-{kind}", option)
    config = getattr(obj, "Config", None)
    if not (isinstance(config, type) and issubclass(config, config_base)):
        raise ContractError(f"{what}: Config must be a subclass of api.{config_base.__name__}, got {config!r}")
    return name, what, config


def check_method(obj, plugin: str) -> str:
    """The method's name, after checking what the host relies on; ContractError otherwise."""
    from pydantic import ValidationError

    from .contract import SETTINGS, MethodConfig
    from .method import DEFAULT_PLAN_FIELDS, Method

    name, what, config = _identity(obj, plugin, "method", Method, MethodConfig, "--method")
    bad = [s for s in obj.settings if s not in SETTINGS]
    if bad or not obj.settings:
        raise ContractError(f"{what}: settings {tuple(obj.settings)} must be a non-empty subset of {SETTINGS}")
    if obj.generates:
        if not _overrides(obj, Method, "sample"):
            raise ContractError(f"{what} generates images ({', '.join(obj.settings)}) but does not implement "
                                "sample(self, ctx, sampler, batch)")
        params = list(inspect.signature(obj.sample).parameters)
        if len(params) != 3:
            raise ContractError(f"{what}: sample({', '.join(params)}) must take (ctx, sampler, batch): the cell "
                                "context, the sampler and the batch of requests")
        if not _overrides(obj, Method, "plan"):
            missing = [f for f in DEFAULT_PLAN_FIELDS if f not in _fields_of(config)]
            if missing:
                raise ContractError(f"{what} uses the default plan(), which makes config.images_per_class images "
                                    f"of each class: add an `{missing[0]}` field to its Config, or implement plan()")
    if _overrides(obj, Method, "adapt_units") and not _overrides(obj, Method, "adapt"):
        raise ContractError(f"{what} declares adapt units but does not implement adapt(self, ctx, unit)")
    if not isinstance(obj.profile_defaults, dict):
        raise ContractError(f"{what}: profile_defaults must be a dict {{profile: {{setting: value}}}}")
    for profile, values in obj.profile_defaults.items():
        unknown = sorted(set(values) - _fields_of(config))
        if unknown:
            raise ContractError(f"{what}: profile_defaults[{profile!r}] sets {', '.join(unknown)}, which its Config "
                                f"does not have (it has: {', '.join(sorted(_fields_of(config))) or 'nothing'})")
        try:
            config(**values)
        except ValidationError as e:
            raise ContractError(f"{what}: profile_defaults[{profile!r}] is not a valid Config: "
                                f"{e.errors()[0]['msg']} ({'.'.join(map(str, e.errors()[0]['loc']))})") from None
    return name


def check_classifier(obj, plugin: str) -> str:
    from .classifier.base import Classifier, ClassifierConfig

    name, what, config = _identity(obj, plugin, "classifier", Classifier, ClassifierConfig, "--classifier")
    for hook in ("train", "evaluate"):
        if not _overrides(obj, Classifier, hook):
            raise ContractError(f"{what} does not implement {hook}(self, job{', state, split' * (hook == 'evaluate')})")
    return name


def check_dataset(obj, plugin: str) -> str:
    from .datasets.adapter import DatasetAdapter

    key, what = _named(obj, plugin, "dataset", DatasetAdapter, option="--dataset", attr="key")
    if not (_overrides(obj, DatasetAdapter, "load") or hasattr(obj, "collect")):
        raise ContractError(f"{what} does not implement load(self, options) -> api.DatasetManifest")
    return key


def check_captioner(obj, plugin: str) -> str:
    from .captioner import Captioner

    name, what = _named(obj, plugin, "captioner", Captioner)
    if not _overrides(obj, Captioner, "caption"):
        raise ContractError(f"{what} does not implement caption(self, images, class_name, *, source, device)")
    return name


CHECKS = {"methods": check_method, "classifiers": check_classifier, "datasets": check_dataset,
          "captioners": check_captioner}


# ---- what a plugin's hooks hand back ---------------------------------------------------------------------------


def check_units(method, units) -> list[str]:
    """adapt_units() must give distinct strings (each names a saved artifact)."""
    if not isinstance(units, (list, tuple)) or not all(isinstance(u, str) and u for u in units):
        raise ContractError(f"{origin(method)}: method {method.name!r}: adapt_units() must return a list of "
                            f"non-empty strings, got {type(units).__name__} {list(units)[:3] if units else units!r}")
    if len(set(units)) != len(units):
        dup = next(u for u in units if list(units).count(u) > 1)
        raise ContractError(f"{origin(method)}: method {method.name!r}: adapt_units() names unit {dup!r} twice")
    return list(units)


def check_required_models(method, models) -> list[tuple[str, str, str]]:
    if not isinstance(models, (list, tuple)) or not all(
            isinstance(m, (list, tuple)) and len(m) == 3 and all(isinstance(x, str) for x in m) for m in models):
        raise ContractError(f"{origin(method)}: method {method.name!r}: required_models() must return a list of "
                            f"(setting name, kind, source) string triples, got {models!r}")
    return [tuple(m) for m in models]


def check_state(classifier, state) -> dict:
    """train() must return {name: torch.Tensor} (it is saved as safetensors)."""
    import torch

    what = f"{origin(classifier)}: classifier {classifier.name!r}"
    if not isinstance(state, dict):
        raise ContractError(f"{what}: train() returned a {type(state).__name__}; it must return a dict of torch "
                            "tensors by name (saved as safetensors; {} when nothing is trained)")
    bad = [(k, v) for k, v in state.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        k, v = bad[0]
        kind = f"{type(v).__module__}.{type(v).__name__}".replace("builtins.", "")
        raise ContractError(f"{what}: train() returned a state whose {k!r} is a {kind}; every value must be a "
                            "torch.Tensor (saved as safetensors): convert with torch.from_numpy / torch.tensor")
    return state
