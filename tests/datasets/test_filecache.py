"""A second check of the same copy reads no unchanged file; a changed or broken file is read (and reported) again."""

import os

import pytest

from datadream_bench.builtins.datasets import DemoDigits
from datadream_bench.datasets.adapter import DatasetOptions
from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.problems import DatasetInvalid


def test_unchanged_files_are_not_read_twice_and_changes_are_seen(tmp_path):
    options = DatasetOptions(data_root=None, work_dir=tmp_path)
    manifest, first = prepare_dataset(DemoDigits(), options, shots=[4])
    files = first["checked"]["files"]
    assert first["checked"]["read"] == files and first["checked"]["decoded"] == files

    again_manifest, again = prepare_dataset(DemoDigits(), options, shots=[4])
    assert again["checked"]["read"] == 0 and again["checked"]["decoded"] == 0
    assert again_manifest.fingerprint() == manifest.fingerprint()

    # A test image replaced by a broken file: read again, reported, never served from the cache.
    victim = manifest.split("test")[0].path
    with open(victim, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    os.utime(victim, ns=(1, 1))  # even an old mtime: the size changed
    with pytest.raises(DatasetInvalid, match=victim.split("/")[-1]):
        prepare_dataset(DemoDigits(), options, shots=[4])


def test_a_changed_file_is_read_again(tmp_path):
    options = DatasetOptions(data_root=None, work_dir=tmp_path)
    manifest, _ = prepare_dataset(DemoDigits(), options, shots=[4])
    a, b = manifest.split("train")[0].path, manifest.split("train")[1].path
    with open(b, "rb") as src, open(a, "wb") as dst:  # a now holds b's image: same kind of file, new content
        dst.write(src.read())
    _, report = prepare_dataset(DemoDigits(), options, shots=[4])
    assert report["checked"]["read"] == 1 and report["checked"]["decoded"] == 1
