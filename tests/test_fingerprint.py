"""Artifact and cell keys hold a hash of the plugin code that made them: an edited method or classifier never
meets the results of its old code, whatever its version number says."""

import shutil
import sys
from pathlib import Path

from datadream_bench import fingerprint
from datadream_bench.plugins import load_registry
from datadream_bench.runner.cell import artifact_keys
from datadream_bench.testing import tiny_cells

FIXTURES = Path(__file__).parent / "fixtures" / "plugins"


def test_an_edit_to_a_plugin_changes_its_keys(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURES, plugins)
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.delitem(sys.modules, "dd_bench_example", raising=False)
    registry = load_registry()
    before = tiny_cells(["example-sd"], tmp_path / "work", registry, settings=["synthetic"])[0]

    source = plugins / "dd_bench_example" / "__init__.py"
    source.write_text(source.read_text() + "\n\nDEFAULT_NEGATIVE_PROMPT = ''\n")  # same version, other code
    fingerprint._source_fingerprint.cache_clear()
    after = tiny_cells(["example-sd"], tmp_path / "work", registry, settings=["synthetic"])[0]

    assert before.provenance["method_version"] == after.provenance["method_version"]
    assert before.spec.inputs["code"]["method"] != after.spec.inputs["code"]["method"]
    assert before.spec.inputs["code"]["classifier"] == after.spec.inputs["code"]["classifier"]
    assert before.spec.key() != after.spec.key()
    old, new = artifact_keys(before), artifact_keys(after)
    assert old["fewshot"] == new["fewshot"]
    assert old["adapt"] != new["adapt"] and old["generate"] != new["generate"]
    assert old["classifier"] != new["classifier"]  # trained on the other code's images


def test_the_classifier_hash_covers_its_package(tmp_path):
    import datadream_bench.classifier as package

    classifier = load_registry().classifiers["clip-lora"]
    root = Path(package.__file__).parent
    assert fingerprint.code_fingerprint(classifier) == fingerprint._source_fingerprint(str(root))
    copy = tmp_path / "classifier"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert fingerprint._source_fingerprint(str(copy)) == fingerprint.code_fingerprint(classifier)
    (copy / "train.py").write_text("# one more module\n")
    fingerprint._source_fingerprint.cache_clear()  # a new process would read the files afresh
    assert fingerprint._source_fingerprint(str(copy)) != fingerprint.code_fingerprint(classifier)
