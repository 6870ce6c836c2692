"""Checkpoints load as users have them, offline: hub-cache snapshots, save_pretrained folders, .bin-only CLIP through
transformers' safe loader, SD's fp16 variant; a missing, empty or broken file is a usage error naming it."""

import os
import shutil

import pytest
import torch
from hub_cache import BLIP, CLIP, CLIP_H, SD, snapshot

from datadream_bench.errors import ModelNotFoundError, UsageError
from datadream_bench.models import loading
from datadream_bench.models.checkpoint import CheckpointInvalid, open_checkpoint


@pytest.fixture(autouse=True)
def fresh_loads():
    loading._LOADED.clear()
    yield
    loading._LOADED.clear()


@pytest.fixture
def torch_loads(monkeypatch):
    """Every torch.load call's keyword arguments."""
    calls, real = [], torch.load

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording)
    return calls


def test_hub_id_resolves_to_the_snapshot_refs_main_names(hub):
    checkpoint = open_checkpoint(CLIP, "clip")
    assert checkpoint.root == snapshot(hub, CLIP).resolve()
    described = checkpoint.describe()
    assert described["repo_id"] == CLIP and described["revision"] == snapshot(hub, CLIP).name
    # every file of the snapshot is a relative link into blobs/, as the hub library writes them
    link = snapshot(hub, CLIP) / "pytorch_model.bin"
    assert link.is_symlink() and not os.readlink(link).startswith("/")


def test_bin_only_clip_loads_through_transformers_with_weights_only(hub, torch_loads):
    checkpoint = open_checkpoint(CLIP, "clip")
    assert checkpoint.weights == ("pytorch_model.bin",)
    assert checkpoint.load_kwargs() == {"use_safetensors": False}
    model, tokenizer, size = loading.load_clip(CLIP)
    assert size == 32 and tokenizer.eos_token_id == model.config.text_config.eos_token_id
    # the weights on disk are the weights in the model, read by the one safe loader
    assert torch_loads and all(call.get("weights_only") is True for call in torch_loads)
    saved = torch.load(snapshot(hub, CLIP) / "pytorch_model.bin", weights_only=True)
    name = "vision_model.embeddings.patch_embedding.weight"
    assert torch.equal(model.state_dict()[name], saved[name])


def test_safetensors_is_preferred_when_both_formats_exist(hub, torch_loads):
    checkpoint = open_checkpoint(CLIP_H, "clip")
    assert (snapshot(hub, CLIP_H) / "pytorch_model.bin").exists()
    assert checkpoint.weights == ("model.safetensors",) and checkpoint.load_kwargs() == {"use_safetensors": True}
    loading.load_clip(CLIP_H)
    assert torch_loads == []  # nothing unpickled


def test_sd_full_precision_loads_the_plain_files(hub):
    checkpoint = open_checkpoint(SD, "sd", "fp32")
    assert checkpoint.variant is None
    assert checkpoint.weights == ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                                  "text_encoder/model.safetensors")
    pipe = loading.load_sd(SD)
    assert pipe.unet.dtype == torch.float32 and pipe.unet.config.sample_size * pipe.vae_scale_factor == 64
    # the text encoder's tensors are named as SD 2.1 names them (text_model.*) and still load, not stay random
    from safetensors.torch import load_file

    saved = load_file(checkpoint.files["text_encoder/model.safetensors"])
    name = "encoder.layers.0.self_attn.q_proj.weight"
    assert torch.equal(pipe.text_encoder.state_dict()[name], saved[f"text_model.{name}"])


def test_sd_half_precision_loads_the_fp16_variant(hub):
    checkpoint = open_checkpoint(SD, "sd", "bf16")
    assert checkpoint.variant == "fp16" and checkpoint.load_kwargs() == {"use_safetensors": True, "variant": "fp16"}
    assert all(".fp16." in name for name in checkpoint.weights)
    assert checkpoint.describe()["variant"] == "fp16"
    pipe = loading.load_sd(SD, dtype=torch.bfloat16)
    assert pipe.unet.dtype == torch.bfloat16
    # the variant's weights, not the full-precision file's, are what was loaded
    half = open_checkpoint(SD, "sd", "fp16").files["unet/diffusion_pytorch_model.fp16.safetensors"]
    from safetensors.torch import load_file

    name = "conv_in.weight"
    assert torch.equal(pipe.unet.state_dict()[name], load_file(half)[name].to(torch.bfloat16))


def test_sd_with_only_the_fp16_variant_uses_it_in_full_precision(hub_copy):
    for path in snapshot(hub_copy, SD).rglob("*"):
        if path.name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors",
                         "pytorch_model.bin"):
            path.unlink()
    checkpoint = open_checkpoint(SD, "sd", "fp32")
    assert checkpoint.variant == "fp16"
    pipe = loading.load_sd(SD)
    assert pipe.unet.dtype == torch.float32  # fp16 weights, computed in the precision asked for


def test_a_component_without_any_weights_is_named(hub_copy):
    unet = snapshot(hub_copy, SD) / "unet"
    for path in unet.glob("diffusion_pytorch_model*"):
        path.unlink()
    with pytest.raises(CheckpointInvalid, match=rf"--sd-model '{SD}'.*{unet}: no weight file "
                                                r"\(diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin"):
        open_checkpoint(SD, "sd", "fp32", "--sd-model")


@pytest.mark.parametrize("damage", ["dangling", "empty", "truncated", "garbage"])
def test_a_broken_weight_file_is_a_usage_error_naming_it(hub_copy, damage):
    link = snapshot(hub_copy, SD) / "unet" / "diffusion_pytorch_model.safetensors"
    blob = link.resolve()
    data = blob.read_bytes()
    if damage == "dangling":
        blob.unlink()
    else:
        blob.chmod(0o644)
        blob.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not a tensor file"}[damage])
    expected = {"dangling": "which is missing", "empty": "empty file", "truncated": "not a readable safetensors",
                "garbage": "not a readable safetensors"}[damage]
    with pytest.raises(CheckpointInvalid, match=expected) as caught:
        open_checkpoint(SD, "sd", "fp32")
    assert str(link) in str(caught.value)


def test_a_bin_that_is_not_a_torch_archive_is_named(hub_copy):
    link = snapshot(hub_copy, CLIP) / "pytorch_model.bin"
    blob = link.resolve()
    blob.write_bytes(blob.read_bytes()[:1000])  # cut short: the zip directory at the end is gone
    with pytest.raises(CheckpointInvalid, match=f"{link}: not a PyTorch weights archive"):
        open_checkpoint(CLIP, "clip")


@pytest.mark.parametrize(("kind", "needs"), [("sd", "model_index.json"), ("clip", "config.json")])
def test_an_empty_folder_is_not_a_checkpoint(tmp_path, kind, needs):
    with pytest.raises(UsageError, match=f"holds no {needs}: it must hold a loadable checkpoint of the right kind"):
        open_checkpoint(str(tmp_path), kind)


def test_a_clip_folder_must_hold_a_clip_config(hub):
    with pytest.raises(CheckpointInvalid, match="model_type 'blip', not 'clip'"):
        open_checkpoint(BLIP, "clip")


def test_a_save_pretrained_folder_and_its_hub_snapshot_load_alike(hub, tmp_path):
    folder = tmp_path / "clip-copy"
    shutil.copytree(snapshot(hub, CLIP_H), folder)  # links followed: plain files, as save_pretrained writes them
    assert not any(p.is_symlink() for p in folder.iterdir())
    model, _, _ = loading.load_clip(str(folder))
    cached, _, _ = loading.load_clip(CLIP_H)
    name = "text_projection.weight"
    assert torch.equal(model.state_dict()[name], cached.state_dict()[name])


def test_a_hub_id_missing_from_the_cache_says_where_it_looked(hub):
    with pytest.raises(ModelNotFoundError, match=f"the Hugging Face cache {hub / 'hub'}"):
        open_checkpoint("openai/clip-vit-large-patch14", "clip")


def test_a_missing_ref_is_named(hub_copy):
    (snapshot(hub_copy, CLIP).parents[1] / "refs" / "main").unlink()
    with pytest.raises(ModelNotFoundError, match=r"refs/main missing"):
        open_checkpoint(CLIP, "clip")


def test_a_revision_can_be_pinned(hub):
    commit = snapshot(hub, CLIP).name
    assert open_checkpoint(f"{CLIP}@{commit}", "clip").describe()["revision"] == commit
    with pytest.raises(ModelNotFoundError, match="no snapshot of 'v2'"):
        open_checkpoint(f"{CLIP}@v2", "clip")


def test_loading_writes_nothing_to_stdout(hub, capfd):
    # SD 2.1's tokenizer_config.json makes the tokenizers library print a warning per special token to fd 1
    loading.load_sd(SD)
    loading.load_clip(CLIP)
    out, err = capfd.readouterr()
    assert out == ""
