"""Plugins use the public API only: what a built-in needs from the core, a third party needs too.

Every import of a plugin module is read (ast): from dd-bench it may take `datadream_bench.api` only (test helpers:
`datadream_bench.testing` too); the rest are its own modules and ordinary libraries. The built-in registration
modules (datadream_bench/builtins) take the API plus the implementation package they register (the CLIP-LoRA
classifier, the dataset sources).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PLUGINS = sorted((ROOT / "plugins").glob("dd_bench_*"))
BUILTINS = sorted((ROOT / "datadream_bench" / "builtins").glob("*.py"))
# builtins module -> the implementation package it registers (its own machinery, like a plugin's own modules)
OWN_PACKAGE = {"classifiers": "classifier", "datasets": "datasets"}


def core_imports(path: Path, package_depth: int) -> list[str]:
    """The datadream_bench modules a file imports (relative imports resolved against its package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "datadream_bench"]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] == "datadream_bench":
                module = node.module
            elif node.level > package_depth:  # climbs out of the plugin's own package into datadream_bench
                module = "datadream_bench" + ("." + node.module if node.module else "")
            else:
                continue
            names = [a.name for a in node.names]
            found += [f"{module}.{n}" if module == "datadream_bench" else module for n in names]
    return found


@pytest.mark.parametrize("package", PLUGINS, ids=lambda p: p.name)
def test_built_in_method_plugins_import_only_the_api(package):
    assert any(package.glob("*.py"))
    for path in package.rglob("*.py"):
        bad = [m for m in core_imports(path, package_depth=len(path.relative_to(package).parts))
               if m != "datadream_bench.api"]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: use datadream_bench.api"


@pytest.mark.parametrize("path", BUILTINS, ids=lambda p: p.name)
def test_built_in_registrations_import_only_the_api_and_what_they_register(path):
    allowed = {"datadream_bench.api"}
    own = OWN_PACKAGE.get(path.stem)
    bad = [m for m in core_imports(path, package_depth=1)
           if m not in allowed and not (own and m.startswith(f"datadream_bench.{own}"))]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: use datadream_bench.api"
