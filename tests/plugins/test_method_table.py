"""Every built-in method through the whole pipeline on tiny random models: one row per built-in method.

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
    ("loft", 10),  # one LoRA per real image: 5 classes x 2 shots
    ("da-fusion", 5),
    ("zero-shot-clip", 0),
    ("real-only", 0),
]


def test_the_table_covers_every_built_in_method():
    # Built-in: registered by dd-bench's own modules and entry points; a third-party method installed beside them
    # (the fixture distributions, a user's plugin) is not in this table.
    assert set(load_registry().builtin("methods")) == {name for name, _ in METHODS}


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
    config = method.Config(**first["spec"]["method_config"])
    made = first["generation"]["images"]
    assert made == method.cost(config, classes=5, shots=2).images  # what the method tells `dd-bench plan`
    # the second setting trains on the first one's generated set and LoRA units: nothing made twice
    assert second["generation"]["images"] == 0 and second["generation"]["reused"] == made
    assert first["reused"]["adapt_units"] == 0 and second["reused"]["adapt_units"] == units
