"""Class names and order: mapped by name, canonical order checked, "/" never a path, clear errors."""

import json

import pytest
from builders import coop_names

from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.problems import DatasetInvalid
from datadream_bench.datasets.registry import DATASETS, class_name, quote_dirname, unquote_dirname
from datadream_bench.errors import UsageError


def test_split_file_in_a_foreign_label_order_is_caught(make):
    adapter, options = make("food101", "coop")
    split_file = options.data_root / "food-101" / "split_zhou_Food101.json"
    split = json.loads(split_file.read_text())
    names = coop_names("food101")
    i, j = names.index("cheese_plate"), names.index("cheesecake")
    swap = {i: j, j: i}
    for rows in split.values():
        for row in rows:
            row[1] = swap.get(row[1], row[1])  # the HF order: cheesecake before cheese_plate
    split_file.write_text(json.dumps(split))
    with pytest.raises(DatasetInvalid, match="canonical order"):
        prepare_dataset(adapter, options, shots=(1,))


def test_hf_copy_in_a_foreign_label_order_maps_by_name(make):
    adapter, options = make("food101", "hf")  # built with the swapped ClassLabel order
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert list(manifest.classes) == coop_names("food101")


def test_cars_folders_without_a_class_list_say_what_to_give(make):
    adapter, options = make("cars", "folder")
    options.extra.pop("classes")
    with pytest.raises(DatasetInvalid, match="classes=FILE"):
        prepare_dataset(adapter, options, shots=(1,), decode="fewshot")


def test_flowers_numbers_need_names(make):
    adapter, options = make("flowers102", "folder")
    (options.data_root / "oxford_flowers" / "cat_to_name.json").unlink()
    with pytest.raises(DatasetInvalid, match="names need a class list"):
        prepare_dataset(adapter, options, shots=(1,), decode="fewshot")


def test_slashes_never_become_paths(make):
    for key, name in (("fgvc_aircraft", "F/A-18"), ("cars", "2012 Ram C/V Cargo Van Minivan"),
                      ("imagenet", "swim trunks / shorts")):
        assert name in coop_names(key)
        assert "/" not in quote_dirname(name) and unquote_dirname(quote_dirname(name)) == name
    adapter, options = make("fgvc_aircraft", "folder")
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert "F/A-18" in manifest.classes
    folder = options.data_root / "fgvc_aircraft" / "train" / "F%2FA-18"
    assert folder.is_dir() and not (options.data_root / "fgvc_aircraft" / "train" / "F").exists()


def test_hf_materialised_files_never_use_class_names(make):
    adapter, options = make("sun397", "hf")
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    assert "outdoor apartment_building" in manifest.classes
    assert all("apartment" not in s.path for s in manifest.split("train"))


def test_registry_spellings():
    assert class_name(DATASETS["sun397"], "/a/apartment_building/outdoor") == "outdoor apartment_building"
    assert class_name(DATASETS["cars"], "Ram C/V Cargo Van Minivan 2012") == "2012 Ram C/V Cargo Van Minivan"
    assert class_name(DATASETS["eurosat"], "AnnualCrop") == "Annual Crop Land"
    assert class_name(DATASETS["caltech101"], "Faces") == "face"
    assert class_name(DATASETS["pets"], "Abyssinian") == "abyssinian"


def test_nothing_found_names_what_was_looked_for(tmp_path):
    from datadream_bench.datasets.adapter import DatasetOptions
    from datadream_bench.datasets.paper import PaperDataset

    (tmp_path / "unrelated").mkdir()
    with pytest.raises(UsageError) as e:
        PaperDataset(DATASETS["dtd"]).load(DatasetOptions(tmp_path / "unrelated", tmp_path / "w"))
    text = str(e.value)
    assert "split_zhou_DescribableTextures.json" in text and "save_to_disk" in text and "metadata.csv" in text


def test_unknown_option_is_refused(make):
    adapter, options = make("dtd", "coop", sorce="coop")
    with pytest.raises(UsageError, match="unknown dataset option"):
        adapter.load(options)
