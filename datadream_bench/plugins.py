"""The plugin host: built-ins and entry-point plugins (group "dd_bench") go through the same hooks.

One plugin failing to import, or breaking the contract, is recorded and listed by `dd-bench plugins`; it never
breaks the others or --help. Each registered object is checked when it registers (validation.CHECKS): one that does
not keep the contract is not registered, and asking for it by name gives the reason. DD_BENCH_LOAD_PLUGINS
(comma-separated allow-list; set but empty = none) and DD_BENCH_DISABLE_PLUGINS (block-list) apply to entry-point
plugins.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import __version__, hookspecs
from .errors import UsageError
from .validation import CHECKS, ContractError, hook_problems

ENTRY_POINT_GROUP = "dd_bench"
DISTRIBUTION = "dd-bench"  # the distribution whose entry-point plugins are the built-in methods
BUILTIN_PLUGINS = ("datadream_bench.builtins.classifiers", "datadream_bench.builtins.references",
                   "datadream_bench.builtins.datasets", "datadream_bench.builtins.captioners")
KINDS = ("methods", "classifiers", "datasets", "captioners")
HOOKS = [f"register_{kind}" for kind in KINDS]


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False  # part of dd-bench: a core module, or an entry point of the dd-bench distribution
    distribution: str | None = None


@dataclass
class Registry:
    methods: dict = field(default_factory=dict)
    classifiers: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)
    captioners: dict = field(default_factory=dict)
    owner: dict = field(default_factory=dict)  # (kind, name) -> plugin name
    plugins: list[PluginInfo] = field(default_factory=list)
    rejected: dict = field(default_factory=dict)  # (kind, name) -> why it was not registered

    def get(self, kind: str, name: str):
        table = getattr(self, kind)
        if name not in table:
            if (kind, name) in self.rejected:
                raise ContractError(f"{kind[:-1]} {name!r} is installed but not usable: {self.rejected[(kind, name)]}")
            valid = ", ".join(sorted(table)) or "(none installed)"
            raise UsageError(f"unknown {kind[:-1]} {name!r}; valid {kind}: {valid}")
        return table[name]

    def builtin(self, kind: str) -> list[str]:
        """Names of `kind` registered by dd-bench itself (core modules and its own entry points)."""
        infos = {p.name: p for p in self.plugins}
        return [name for (k, name), plugin in self.owner.items() if k == kind and infos[plugin].builtin]


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {p.strip() for p in value.split(",") if p.strip()}


def _fail(info: PluginInfo, message: str) -> None:
    info.error = (info.error + "; " if info.error else "") + message


def load_registry() -> Registry:
    pm = pluggy.PluginManager("dd_bench")
    pm.add_hookspecs(hookspecs)
    reg = Registry()
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        reg.plugins.append(PluginInfo(module_name, module_name, version=__version__, builtin=True,
                                      distribution=DISTRIBUTION))

    allow, block = _env_list("DD_BENCH_LOAD_PLUGINS"), _env_list("DD_BENCH_DISABLE_PLUGINS") or set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        info = PluginInfo(ep.name, ep.value, version=dist.version if dist else None,
                          builtin=dist_name == DISTRIBUTION, distribution=dist_name)
        reg.plugins.append(info)
        try:
            plugin = ep.load()
        except Exception as e:  # a broken plugin is reported, never fatal
            info.error = f"{type(e).__name__}: {e}"
            continue
        problems = hook_problems(plugin, ep.name, HOOKS)
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as e:  # a hook with the wrong arguments
            problems.append(f"{ep.name}: {e}")
        if problems:
            _fail(info, "; ".join(problems))
            if pm.is_registered(plugin):
                pm.unregister(plugin)
    _check_pending(pm, reg)

    for info in reg.plugins:
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    for kind in KINDS:
        _collect(pm, reg, kind)
    return reg


def _check_pending(pm: pluggy.PluginManager, reg: Registry) -> None:
    """A hook implementation with no matching spec (a misspelled hook name) is the fault of its plugin: that plugin
    is reported and taken out, the others stay."""
    infos = {info.name: info for info in reg.plugins}
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as e:
            name = pm.get_name(e.plugin)
            info = infos.get(name)
            if info is not None and not info.error:
                _fail(info, f"{name}: {e}; the hooks are {', '.join(HOOKS)}")
            pm.unregister(e.plugin)


def _registrar(reg: Registry, kind: str, info: PluginInfo):
    check = CHECKS[kind]

    def register(obj) -> None:
        try:
            name = check(obj, info.name)
        except ContractError as e:
            label = getattr(obj, "name", None) or getattr(obj, "key", None)
            if isinstance(label, str) and label:
                reg.rejected[(kind, label)] = str(e)
            _fail(info, str(e))
            return
        table = getattr(reg, kind)
        if name in table:
            raise UsageError(
                f"{kind[:-1]} {name!r} is registered twice: by {reg.owner[(kind, name)]} and by {info.name}"
            )
        table[name] = obj
        reg.owner[(kind, name)] = info.name

    return register


def _collect(pm: pluggy.PluginManager, reg: Registry, kind: str) -> None:
    """Call each plugin's implementation on its own, so that one raising is charged to that plugin alone."""
    infos = {info.name: info for info in reg.plugins}
    for impl in reversed(getattr(pm.hook, f"register_{kind}").get_hookimpls()):  # registration order
        info = infos[impl.plugin_name]
        try:
            impl.function(register=_registrar(reg, kind, info))
        except Exception as e:
            _fail(info, f"register_{kind}: {type(e).__name__}: {e}")
