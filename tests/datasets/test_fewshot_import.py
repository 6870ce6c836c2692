import shutil

import pytest

from datadream_bench.datasets.check import prepare_dataset
from datadream_bench.datasets.fewshot import draw_few_shot, import_few_shot
from datadream_bench.datasets.problems import DatasetInvalid
from datadream_bench.datasets.registry import quote_dirname


def _export(manifest, folder, pick):
    """DataDream's layout: <folder>/<class>/<copied images>."""
    for label, group in enumerate(manifest.by_class("train")):
        target = folder / quote_dirname(manifest.classes[label])
        target.mkdir(parents=True)
        for s in pick(label, group):
            shutil.copy(s.path, target)


def test_folders_of_copies_are_matched_to_the_train_pool(make, tmp_path):
    adapter, options = make("fgvc_aircraft", "coop")  # "F/A-18" is one of the class folders
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    _export(manifest, tmp_path / "seed0", lambda label, group: sorted(group, key=lambda s: s.path)[:2])
    shots = import_few_shot(manifest, tmp_path / "seed0", seed=0)
    assert shots.k == 2 and len(shots.samples) == 200
    assert all(s in manifest.split("train") for s in shots.samples)
    assert shots.fingerprint() != draw_few_shot(manifest, 0, 2).fingerprint()


def test_foreign_and_mislabelled_images_are_reported(make, tmp_path):
    adapter, options = make("eurosat", "coop")
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    _export(manifest, tmp_path / "set", lambda label, group: group[:1])
    folders = sorted((tmp_path / "set").iterdir())
    test_image = manifest.split("test")[0].path
    shutil.copy(test_image, folders[0] / "from_test.jpg")
    other = next(folders[1].iterdir())
    shutil.copy(other, folders[2] / "wrong_class.jpg")
    with pytest.raises(DatasetInvalid) as e:
        import_few_shot(manifest, tmp_path / "set")
    text = str(e.value)
    assert "from_test.jpg: not an image of the train split" in text
    assert "wrong_class.jpg: in the folder of class" in text


def test_a_list_of_paths_works_too(make, tmp_path):
    adapter, options = make("dtd", "coop")
    manifest, _ = prepare_dataset(adapter, options, shots=(1,), decode="fewshot")
    listing = tmp_path / "shots.txt"
    listing.write_text("\n".join(g[0].path for g in manifest.by_class("train")))
    assert import_few_shot(manifest, listing).k == 1
