"""Every built-in method through the whole pipeline on tiny random models: one row per method.

Adding a method adds a row here. Method-specific checks stay in the method's own test file.
"""

import pytest

from datadream_bench.plugins import load_registry
from datadream_bench.testing import check_method

# (method, number of adapt units on the 5-class demo digits)
METHODS = [
    ("zero-shot-sd", 0),
    ("datadream-cls", 5),
    ("datadream-dset", 1),
    ("issynth", 0),
    ("disef", 5),
    ("zero-shot-clip", 0),
    ("real-only", 0),
]


def test_the_table_covers_every_built_in_method():
    registry = load_registry()
    builtin = {name for name, plugin in registry.owner.items() if name[0] == "methods"}
    assert {m for _, m in builtin} == {name for name, _ in METHODS}


@pytest.mark.parametrize("name,units", METHODS)
def test_method_runs_through_the_pipeline(name, units, tmp_path):
    records = check_method(name, tmp_path)
    method = load_registry().methods[name]
    assert sorted(r["spec"]["setting"] for r in records) == sorted(method.settings)
    for record in records:
        assert record["provenance"]["method_plugin"] and record["environment"]["git_commit"] != ""
    if not method.generates:
        assert all(r["generation"] is None for r in records)
        return
    first, second = records  # synthetic, then synthetic+real
    config = first["spec"]["method_config"]
    made = first["generation"]["images"]
    assert made == 5 * config["images_per_class"]
    # the second setting trains on the first one's generated set and LoRA units: nothing made twice
    assert second["generation"]["images"] == 0 and second["generation"]["reused"] == made
    assert first["reused"]["adapt_units"] == 0 and second["reused"]["adapt_units"] == units
