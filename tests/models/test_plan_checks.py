"""plan_grid opens every checkpoint a cell will load (SD, CLIP, a method's captioner and filter) before any model
loads: a missing or broken file is a usage error naming it; the record says which files and revision were used."""

import pytest
from hub_cache import BLIP, CLIP, CLIP_H, SD, snapshot

from datadream_bench.errors import UsageError
from datadream_bench.testing import tiny_cells

DISEF_MODELS = {"captioner": "blip", "captioner_model": BLIP, "filter_model": CLIP_H}


@pytest.fixture
def no_loads(forbid_model_loads, monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.BlipForConditionalGeneration, "from_pretrained", refuse)


def test_every_checkpoint_of_a_cell_is_opened_and_recorded(hub, tmp_path, no_loads):
    cells = tiny_cells(["disef"], tmp_path, sd_model=SD, clip_model=CLIP, overrides=DISEF_MODELS,
                       precision="bf16", settings=["synthetic"])
    (cell,) = cells
    models = cell.provenance["models"]
    assert models["sd"]["repo_id"] == SD and models["sd"]["revision"] == snapshot(hub, SD).name
    assert models["sd"]["variant"] == "fp16" and "unet/diffusion_pytorch_model.fp16.safetensors" in models["sd"][
        "weights"]
    assert models["clip"]["weights"] == ["pytorch_model.bin"]
    assert models["captioner_model"]["repo_id"] == BLIP and models["filter_model"]["repo_id"] == CLIP_H
    assert set(cell.spec.inputs["models"]) == {"captioner_model", "filter_model"}
    assert cell.spec.sd_model == SD  # the spelling is kept for the record and for loading


@pytest.mark.parametrize(("repo", "file", "option"), [
    (SD, "unet/diffusion_pytorch_model.fp16.safetensors", "--sd-model"),
    (SD, "tokenizer/merges.txt", "--sd-model"),
    (CLIP, "pytorch_model.bin", "--clip-model"),
    (BLIP, "model.safetensors", "disef.captioner_model"),
    (CLIP_H, "model.safetensors", "disef.filter_model"),
])
def test_a_missing_file_of_any_checkpoint_stops_the_plan(hub_copy, tmp_path, no_loads, repo, file, option):
    link = snapshot(hub_copy, repo) / file
    link.resolve().unlink()  # the blob is gone: an interrupted download, a cleaned cache
    with pytest.raises(UsageError, match=f"{option} '{repo}'") as caught:
        tiny_cells(["disef"], tmp_path, sd_model=SD, clip_model=CLIP, overrides=DISEF_MODELS, precision="bf16")
    assert f"{link}: a link to" in str(caught.value)


def test_an_empty_folder_as_clip_model_is_a_usage_error(tmp_path, no_loads):
    empty = tmp_path / "clip"
    empty.mkdir()
    with pytest.raises(UsageError, match=f"--clip-model '{empty}'.*must hold a loadable checkpoint of the right kind"):
        tiny_cells(["zero-shot-clip"], tmp_path, clip_model=str(empty))
