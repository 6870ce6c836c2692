"""A copy full of trouble: default mode lists every offender at once (and the CLI exits 2); skip-bad finishes and
counts; the odd-but-fine files are accepted."""

import json
import shutil

import pytest
from typer.testing import CliRunner
from zoo import bad, good_odd

from datadream_bench.cli.datasets_cmd import app
from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.images import load_array
from datadream_bench.datasets.problems import DatasetInvalid


@pytest.fixture
def troubled(make):
    """EuroSAT in the CoOp layout, with odd files in Forest's train rows and bad ones in River's test rows."""
    adapter, options = make("eurosat", "coop")
    base = options.data_root / "eurosat"
    images = base / "2750"
    split_file = base / "split_zhou_EuroSAT.json"
    split = json.loads(split_file.read_text())
    odd = good_odd(images / "Forest")
    broken = bad(images / "River")
    split["train"] += [[f"Forest/{p.name}", 1, "Forest"] for p in odd.values()]
    split["test"] += [[f"River/{p.name}", 8, "River"] for p in broken.values()]
    split["test"].append(["River/ghost.jpg", 8, "River"])  # named by the split, not on disk
    shutil.copy(images / split["test"][0][0], images / "SeaLake" / "extra.jpg")
    split["test"].append(["SeaLake/extra.jpg", 10, "Ocean"])  # a label outside the ten classes
    split_file.write_text(json.dumps(split))
    offenders = {str(p): kind for kind, p in broken.items()}
    offenders[str(images / "River" / "ghost.jpg")] = "missing"
    offenders[str(images / "SeaLake" / "extra.jpg")] = "outside"
    return adapter, options, odd, offenders


def test_default_mode_lists_every_offender(troubled):
    adapter, options, odd, offenders = troubled
    with pytest.raises(DatasetInvalid) as e:
        prepare_dataset(adapter, options, shots=(1,))
    by_path = {p.path: p.reason for p in e.value.problems}
    assert set(by_path) == set(offenders)
    expected_words = {"truncated": "truncated", "empty": "identify", "text": "identify", "bomb": "bomb",
                      "extension": "extension", "missing": "missing file", "outside": "outside the class list"}
    for path, kind in offenders.items():
        assert expected_words[kind] in by_path[path], (kind, by_path[path])
        assert path in str(e.value)
    assert not any(str(p) in by_path for p in odd.values())


def test_cli_check_exits_2_and_prints_the_problems(troubled):
    adapter, options, _, offenders = troubled
    result = CliRunner().invoke(app, ["check", "--dataset", "eurosat", "--data-root", str(options.data_root),
                                      "--shots", "1", "--work-dir", str(options.work_dir), "--json"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert {p["path"] for p in report["problems"]} == set(offenders)


def test_skip_bad_finishes_and_counts(troubled):
    adapter, options, odd, offenders = troubled
    manifest, report = prepare_dataset(adapter, options, shots=(1,), skip_bad=True, max_bad=0.5)
    skipped = report["skipped"]
    assert skipped["count"] == len(offenders)
    assert {f["path"] for f in skipped["files"]} == set(offenders)
    assert skipped["by_split"] == {"train": 0, "val": 0, "test": len(offenders) - 1, "unread rows": 1}
    kept = {s.path for samples in manifest.splits.values() for s in samples}
    assert not kept & set(offenders)
    assert {str(p) for p in odd.values()} <= kept
    assert report["valid"] and report["fingerprint"]


def test_skip_bad_still_fails_past_the_cap(troubled):
    adapter, options, _, offenders = troubled
    with pytest.raises(DatasetInvalid, match="skip-bad cap"):
        prepare_dataset(adapter, options, shots=(1,), skip_bad=True)  # default cap: 1% of rows
    with pytest.raises(DatasetInvalid, match="skip-bad cap"):
        prepare_dataset(adapter, options, shots=(1,), skip_bad=True, max_bad=len(offenders) - 1)


def test_accepted_images_are_rgb_uint8_upright(troubled):
    _, _, odd, _ = troubled
    for path in odd.values():
        arr = load_array(path)
        assert arr.dtype.name == "uint8" and arr.shape[2] == 3
    assert load_array(odd["exif"]).shape[:2] == (20, 10)


def test_folder_layout_reports_empty_class_folder_and_bad_file(make):
    adapter, options = make("eurosat", "folder")
    base = options.data_root / "eurosat"
    (base / "test" / "Forest_old").mkdir()
    broken = bad(base / "test" / "River")
    with pytest.raises(DatasetInvalid) as e:
        prepare_dataset(adapter, options, shots=(1,))
    reasons = {p.path: p.reason for p in e.value.problems}
    assert set(reasons) == {str(base / "test" / "Forest_old")} | {str(p) for p in broken.values()}
    assert reasons[str(base / "test" / "Forest_old")] == "empty class folder"
    assert "truncated" in reasons[str(broken["truncated"])]
    manifest, report = prepare_dataset(adapter, options, shots=(1,), skip_bad=True, max_bad=6)
    assert report["skipped"]["count"] == 6 and len(manifest.classes) == 10


def test_mislabelled_row_and_train_test_overlap_are_caught(make):
    adapter, options = make("eurosat", "coop")
    split_file = options.data_root / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_file.read_text())
    moved = split["train"][0]  # an AnnualCrop image, labelled River
    split["train"][0] = [moved[0], 8, "River"]
    split["test"].append(split["train"][1])  # a train row in test too
    split_file.write_text(json.dumps(split))
    with pytest.raises(DatasetInvalid) as e:
        prepare_dataset(adapter, options, shots=(1,))
    text = str(e.value)
    assert "lies in folder 'AnnualCrop'" in text and "train/test overlap" in text


def test_k_larger_than_smallest_class_names_the_class(make):
    adapter, options = make("eurosat", "coop")
    with pytest.raises(DatasetInvalid, match="16-shot needs 16 train images per class; class 'Annual Crop Land' has 2"):
        prepare_dataset(adapter, options, shots=(4, 16))


def test_rows_that_leave_the_dataset_are_refused_and_skip_bad_drops_them(make, tmp_path):
    adapter, options = make("eurosat", "coop")
    base = options.data_root / "eurosat"
    split_file = base / "split_zhou_EuroSAT.json"
    split = json.loads(split_file.read_text())
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(base / "2750" / split["train"][0][0], outside / "x.jpg")  # a real image, just not in the dataset
    split["train"] += [["../../outside/x.jpg", 0, "AnnualCrop"], [str(outside / "x.jpg"), 0, "AnnualCrop"]]
    split_file.write_text(json.dumps(split))
    with pytest.raises(DatasetInvalid) as e:
        prepare_dataset(adapter, options, shots=(1,))
    reasons = [p.reason for p in e.value.problems]
    assert len(reasons) == 2 and all("is outside" in r and "split_zhou_EuroSAT.json train row" in r for r in reasons)
    manifest, report = prepare_dataset(adapter, options, shots=(1,), skip_bad=True, max_bad=2)
    assert report["skipped"]["count"] == 2
    assert not any("outside" in s.path for s in manifest.split("train"))


def test_skip_bad_drops_the_test_copy_of_a_train_image(make):
    adapter, options = make("eurosat", "coop")
    split_file = options.data_root / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_file.read_text())
    leaked = split["train"][1]
    split["test"].append(leaked)
    split_file.write_text(json.dumps(split))
    manifest, report = prepare_dataset(adapter, options, shots=(1,), skip_bad=True, max_bad=1)
    leaked_path = str(options.data_root / "eurosat" / "2750" / leaked[0])
    assert [f["path"] for f in report["skipped"]["files"]] == [leaked_path]
    assert "train/test overlap" in report["skipped"]["files"][0]["reason"]
    assert report["skipped"]["by_split"]["test"] == 1
    assert leaked_path in {s.path for s in manifest.split("train")}
    assert leaked_path not in {s.path for s in manifest.split("test")}
