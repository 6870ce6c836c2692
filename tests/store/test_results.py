"""The SQLite results store: one row per cell key, full record kept, key-prefix lookup."""

import pytest

from datadream_bench.errors import UsageError
from datadream_bench.store import ResultsStore

SPEC = dict(method="m", dataset="d", shots=4, seed=0, setting="synthetic", classifier="c", profile="demo")


def test_add_rows_record(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    assert not store.has("abc123")
    store.add(SPEC, "abc123", 55.5, {"metrics": {"top1": 55.5}, "timings_s": {"total": 1.0}})
    store.add({**SPEC, "seed": 1}, "abd999", 60.0, {"metrics": {"top1": 60.0}})
    assert store.has("abc123")
    assert [r["seed"] for r in store.rows(method="m")] == [0, 1]
    assert store.rows(seed=1)[0]["top1"] == 60.0
    assert store.record("abc")["timings_s"] == {"total": 1.0}
    with pytest.raises(UsageError, match="2 cells"):
        store.record("ab")
    with pytest.raises(UsageError, match="no cell"):
        store.record("zz")
    # a reopened store sees the same rows (another process, say)
    assert len(ResultsStore(tmp_path / "r.sqlite").rows()) == 2


def test_rerecording_a_cell_replaces_it(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.add(SPEC, "k", 1.0, {})
    store.add(SPEC, "k", 2.0, {})
    assert [r["top1"] for r in store.rows()] == [2.0]
