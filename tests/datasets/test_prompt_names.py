"""DataDream's class-name lists: one name per canonical class, in canonical label order, used by every prompt."""

import pytest
from builders import build_coop, class_rows

from datadream_bench.datasets.adapter import DatasetOptions
from datadream_bench.datasets.paper import PaperDataset
from datadream_bench.datasets.prompt_names import datadream_lists, prompt_names
from datadream_bench.datasets.registry import DATASETS, normalized
from datadream_bench.errors import UsageError

# Where DataDream's list spells a class differently from both the raw name and CoOp's name, by label. ImageNet's
# CoOp list names two pairs of classes alike; DataDream tells them apart. Flowers: CoOp keeps a stray "?".
RENAMED = {
    "imagenet": {744: ("missile", "projectile missile"), 837: ("sunglasses", "dark sunglasses")},
    "flowers102": {59: ("pink-yellow dahlia?", "pink-yellow dahlia"), 77: ("lotus", "lotus lotus")},
}


@pytest.mark.parametrize("key", sorted(DATASETS))
def test_each_list_lines_up_with_the_canonical_classes(key):
    names = datadream_lists()[key]
    rows = class_rows(key)  # (raw name, CoOp name) of each class, in canonical label order
    assert len(names) == len(rows) == DATASETS[key].num_classes
    renamed = RENAMED.get(key, {})
    for label, ((raw, coop), name) in enumerate(zip(rows, names)):
        if label in renamed:
            assert (coop, name) == renamed[label]
        else:  # the same class: DataDream's spelling is the raw name's or CoOp's, up to case and separators
            assert normalized(name) in (normalized(raw), normalized(coop)), (label, raw, coop, name)
    assert len(set(names)) == len(names)  # unlike CoOp's ImageNet list, no two classes share a name


def test_spot_checks():
    lists = datadream_lists()
    assert lists["eurosat"][0] == "AnnualCrop" and lists["eurosat"][9] == "SeaLake"
    assert lists["pets"][1] == "American Bulldog" and lists["pets"][36] == "Yorkshire Terrier"
    assert lists["cars"][0] == "AM General Hummer SUV 2000" and lists["cars"][195] == "smart fortwo Convertible 2012"
    assert lists["imagenet"][0] == "tench" and lists["imagenet"][999] == "toilet paper"
    assert lists["sun397"][8] == "outdoor apartment_building"


def test_choices():
    classes = tuple(coop for _, coop in class_rows("eurosat"))
    assert prompt_names("eurosat", "datadream", classes)[0] == "AnnualCrop"
    assert prompt_names("eurosat", "coop", classes) == ()
    assert prompt_names("eurosat", "datadream", classes[:9]) == ()  # a copy with other classes: validation says so
    with pytest.raises(UsageError, match="names='folder'"):
        prompt_names("eurosat", "folder", classes)


@pytest.mark.parametrize("key, label, datadream, coop", [
    ("eurosat", 0, "a satellite photo of a AnnualCrop", "a satellite photo of a Annual Crop Land"),
    ("pets", 1, "a pet photo of a American Bulldog", "a pet photo of a american_bulldog"),
    ("cars", 0, "a car photo of a AM General Hummer SUV 2000", "a car photo of a 2000 AM General Hummer SUV"),
])
def test_a_copy_prompts_with_datadream_names_unless_told_coop(data_dir, key, label, datadream, coop):
    build_coop(key, data_dir)
    adapter = PaperDataset(DATASETS[key])
    manifest = adapter.load(DatasetOptions(data_dir, data_dir / "work"))
    assert manifest.names == "datadream" and manifest.prompt(label) == datadream
    assert manifest.classes[label] == coop.split(" photo of a ")[1]  # the canonical names stay CoOp's
    other = adapter.load(DatasetOptions(data_dir, data_dir / "work", {"names": "coop"}))
    assert other.names == "coop" and other.prompt(label) == coop
    with pytest.raises(UsageError, match="unknown names"):
        adapter.load(DatasetOptions(data_dir, data_dir / "work", {"names": "wordnet"}))


def _cells(data_dir, key, methods, options=None, overrides=None):
    from datadream_bench.plugins import load_registry
    from datadream_bench.runner import plan_grid
    from datadream_bench.spec import RunRequest

    request = RunRequest(methods=methods, datasets=[key], data_root=data_dir, profile="tiny", shots=[1], seeds=[0],
                         work_dir=data_dir / "work", dataset_options={key: options or {}},
                         overrides=overrides or {})
    return plan_grid(request, load_registry())


@pytest.mark.parametrize("key, name", [("eurosat", "AnnualCrop"), ("pets", "American Bulldog"),
                                       ("cars", "AM General Hummer SUV 2000")])
def test_datadream_names_reach_fine_tuning_generation_and_the_classifier_head(data_dir, key, name):
    from datadream_bench.context import CellContext
    from datadream_bench.runner.cell import classifier_prompts

    build_coop(key, data_dir)
    label = next(i for i, n in enumerate(datadream_lists()[key]) if n == name)
    word = DATASETS[key].prompt_word
    expected = f"a {word}photo of a {name}"
    for cell in _cells(data_dir, key, ["datadream-cls"]):
        ctx = CellContext(spec=cell.spec, config=cell.method_config, dataset=cell.dataset, fewshot=cell.fewshot,
                          device="cpu", dtype=None)
        assert {e.prompt for e in cell.method.examples(ctx, label)} == {expected}  # SD LoRA fine-tuning
        assert {r.prompt for r in cell.method.plan(ctx) if r.label == label} == {expected}  # generation
        assert classifier_prompts(cell)[label] == expected  # the classifier's head


def test_prompt_names_and_the_zero_shot_template_key_their_cells(data_dir):
    from datadream_bench.runner.cell import artifact_keys, classifier_prompts

    build_coop("eurosat", data_dir)
    ours, coop = (_cells(data_dir, "eurosat", ["real-only", "zero-shot-clip"], {"names": names})
                  for names in ("datadream", "coop"))
    # zero-shot CLIP: CoOp's template with the canonical names (the standard number), whatever names prompts use
    for cells in (ours, coop):
        assert classifier_prompts(cells[1])[0] == "a centered satellite photo of Annual Crop Land."
    assert classifier_prompts(ours[0])[0] == "a satellite photo of a AnnualCrop"
    assert classifier_prompts(coop[0])[0] == "a satellite photo of a Annual Crop Land"
    # other prompts are another experiment: another cell and another classifier artifact, on the same few-shot draw
    assert ours[0].spec.key() != coop[0].spec.key()
    assert artifact_keys(ours[0])["classifier"] != artifact_keys(coop[0])["classifier"]
    assert artifact_keys(ours[0])["fewshot"] == artifact_keys(coop[0])["fewshot"]
    dd_head = _cells(data_dir, "eurosat", ["zero-shot-clip"], overrides={"zero-shot-clip.prompt": "datadream"})[0]
    assert classifier_prompts(dd_head)[0] == "a satellite photo of a AnnualCrop"
    assert dd_head.spec.key() != ours[1].spec.key()
