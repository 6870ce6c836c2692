"""Third-party plugins as an outsider writes them: a learned-token method, a linear-probe classifier and a toy dataset,
each a distribution in tests/fixtures/plugins written against datadream_bench.api alone, checked with the three
check_* helpers a plugin author gets."""

import ast
from pathlib import Path

import pytest

from datadream_bench.testing import check_classifier, check_dataset, check_method

FIXTURES = Path(__file__).parents[1] / "fixtures" / "plugins"
THIRD_PARTY = ["dd_bench_token_sd", "dd_bench_linear_probe", "dd_bench_toy_shapes", "dd_bench_example"]
ALLOWED = {"datadream_bench.api", "datadream_bench.testing"}


@pytest.mark.parametrize("package", THIRD_PARTY)
def test_fixtures_import_only_the_api(package):
    files = list((FIXTURES / package).rglob("*.py"))
    assert files and (FIXTURES / package).is_dir()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" if node.module == "datadream_bench" else node.module
                         for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] == "datadream_bench" and n not in ALLOWED]
            assert not bad, f"{path.name} imports {bad}; a third party has datadream_bench.api and .testing"


def test_a_learned_token_method(example_plugin, tmp_path):
    records = check_method("token-sd", tmp_path)
    assert {r["spec"]["setting"] for r in records} == {"synthetic", "synthetic+real"}
    assert records[0]["generation"]["images"] == 5 * 2


def test_a_linear_probe_classifier(example_plugin, tmp_path):
    records = check_classifier("linear-probe", tmp_path)
    by_setting = {r["spec"]["setting"]: r for r in records}
    assert set(by_setting) == {"none", "real", "synthetic", "synthetic+real"}
    assert by_setting["real"]["classifier"]["trained"] and not by_setting["none"]["classifier"]["trained"]


def test_a_toy_dataset(example_plugin, tmp_path):
    record = check_dataset("toy-shapes", tmp_path, shots=2)
    assert record["spec"]["dataset"] == "toy-shapes" and record["metrics"]["n"] == 3 * 4
