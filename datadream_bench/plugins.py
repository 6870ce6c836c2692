"""The plugin host: built-ins and entry-point plugins (group "dd_bench") go through the same hooks.

One plugin failing to import is recorded and listed by `dd-bench plugins`; it never breaks the others or --help.
DD_BENCH_LOAD_PLUGINS (comma-separated allow-list; set but empty = none) and DD_BENCH_DISABLE_PLUGINS (block-list)
apply to entry-point plugins.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import __version__, hookspecs
from .errors import UsageError

ENTRY_POINT_GROUP = "dd_bench"
BUILTIN_PLUGINS = ("datadream_bench.builtins.classifiers", "datadream_bench.builtins.references",
                   "datadream_bench.builtins.datasets", "datadream_bench.builtins.captioners")


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False


@dataclass
class Registry:
    methods: dict = field(default_factory=dict)
    classifiers: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)
    captioners: dict = field(default_factory=dict)
    owner: dict = field(default_factory=dict)  # (kind, name) -> plugin name
    plugins: list[PluginInfo] = field(default_factory=list)

    def get(self, kind: str, name: str):
        table = getattr(self, kind)
        if name not in table:
            valid = ", ".join(sorted(table)) or "(none installed)"
            raise UsageError(f"unknown {kind[:-1]} {name!r}; valid {kind}: {valid}")
        return table[name]


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {p.strip() for p in value.split(",") if p.strip()}


def load_registry() -> Registry:
    pm = pluggy.PluginManager("dd_bench")
    pm.add_hookspecs(hookspecs)
    reg = Registry()
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        reg.plugins.append(PluginInfo(module_name, module_name, version=__version__, builtin=True))

    allow, block = _env_list("DD_BENCH_LOAD_PLUGINS"), _env_list("DD_BENCH_DISABLE_PLUGINS") or set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, ep.value, version=dist.version if dist else None)
        reg.plugins.append(info)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:  # a broken plugin is reported, never fatal
            info.error = f"{type(e).__name__}: {e}"

    for info in reg.plugins:
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    for kind in ("methods", "classifiers", "datasets", "captioners"):
        _collect(pm, reg, kind)
    return reg


def _registrar(reg: Registry, kind: str, plugin_name: str):
    def register(obj) -> None:
        name = getattr(obj, "name", None) or getattr(obj, "key")
        table = getattr(reg, kind)
        if name in table:
            raise UsageError(
                f"{kind[:-1]} {name!r} is registered twice: by {reg.owner[(kind, name)]} and by {plugin_name}"
            )
        table[name] = obj
        reg.owner[(kind, name)] = plugin_name

    return register


def _collect(pm: pluggy.PluginManager, reg: Registry, kind: str) -> None:
    """Call each plugin's implementation on its own, so that one raising is charged to that plugin alone."""
    infos = {info.name: info for info in reg.plugins}
    for impl in reversed(getattr(pm.hook, f"register_{kind}").get_hookimpls()):  # registration order
        try:
            impl.function(register=_registrar(reg, kind, impl.plugin_name))
        except Exception as e:
            info = infos[impl.plugin_name]
            info.error = (info.error + "; " if info.error else "") + f"register_{kind}: {type(e).__name__}: {e}"
