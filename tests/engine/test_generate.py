"""The generation engine: images are a function of their ids only; LoRA merged == unmerged; resume loses nothing."""

import numpy as np
import pytest
import torch
from PIL import Image

from datadream_bench.engine.generate import generate
from datadream_bench.engine.lora import LoraWeights, merged_lora, unmerged_lora
from datadream_bench.engine.manifest import read_manifest
from datadream_bench.engine.sampler import Sampler
from datadream_bench.method import ImageRequest, Method

PROMPTS = ["a photo of a digit zero", "a photo of a digit one"]


class TextMethod(Method):
    name = "text"

    def __init__(self, steps=3, fail_after=None):
        self.steps, self.calls, self.fail_after = steps, [], fail_after

    def sample(self, ctx, sampler, batch):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed mid-generation")
        self.calls.append([r.id for r in batch])
        return sampler.text_to_image(batch, num_inference_steps=self.steps, guidance_scale=2.0)


def requests(n_per_class=3, adapter=None):
    return [ImageRequest(label, i, seed=1000 * label + i, prompt=PROMPTS[label], adapter=adapter)
            for label in range(2) for i in range(n_per_class)]


def assert_same_image(a, b):
    """Same noise, same prompt, same model: the same image. CPU kernels (oneDNN convolution, MKL GEMM at small M)
    choose their algorithm by batch size, so floats differ by ~1e-6 and a pixel sitting on a rounding boundary can
    land one grey level apart; nothing more is allowed."""
    a, b = a.astype(int), b.astype(int)
    assert np.abs(a - b).max() <= 1
    assert (a != b).mean() < 0.01


def pixels(folder, manifest_record):
    return np.asarray(Image.open(folder / manifest_record["file"]))


def run(method, pipe, folder, batch_size, reqs=None, adapters=None):
    sampler = Sampler(pipe, "cpu", torch.float32)
    return generate(method, sampler, reqs or requests(), folder, batch_size=batch_size,
                    load_adapter=lambda name: adapters[name])


def test_batch_size_never_changes_an_image(tiny_pipe, tmp_path):
    run(TextMethod(), tiny_pipe, tmp_path / "b1", batch_size=1)
    run(TextMethod(), tiny_pipe, tmp_path / "b4", batch_size=4)
    one, four = read_manifest(tmp_path / "b1" / "manifest.jsonl"), read_manifest(tmp_path / "b4" / "manifest.jsonl")
    assert set(one) == set(four) and len(one) == 6
    for image_id in one:
        assert_same_image(pixels(tmp_path / "b1", one[image_id]), pixels(tmp_path / "b4", four[image_id]))
    # and different ids are different images
    ids = sorted(one)
    assert not np.array_equal(pixels(tmp_path / "b1", one[ids[0]]), pixels(tmp_path / "b1", one[ids[1]]))


def test_batches_are_consecutive_and_never_mix_adapters(tiny_pipe, tmp_path):
    reqs = requests(3, adapter="a")[:3] + requests(3, adapter="b")[3:]
    method = TextMethod()
    adapters = {"a": random_lora(tiny_pipe, seed=1), "b": random_lora(tiny_pipe, seed=2)}
    run(method, tiny_pipe, tmp_path, batch_size=2, reqs=reqs, adapters=adapters)
    assert method.calls == [["0000-00000", "0000-00001"], ["0000-00002"], ["0001-00000", "0001-00001"],
                            ["0001-00002"]]


def random_lora(pipe, rank=4, seed=0) -> LoraWeights:
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for component, targets in (("unet", ("to_q", "to_k", "to_v", "to_out.0")),
                               ("text_encoder", ("q_proj", "k_proj", "v_proj", "out_proj"))):
        for name, module in getattr(pipe, component).named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(targets):
                tensors[f"{component}.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=g) * 0.3
                tensors[f"{component}.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=g) * 0.3
    return LoraWeights(tensors, rank=rank, alpha=rank)


def sample_array(pipe, prompt="a photo of a digit zero"):
    out = pipe(prompt=[prompt], num_inference_steps=3, guidance_scale=2.0, output_type="np",
               generator=[torch.Generator().manual_seed(7)])
    return out.images[0]


def test_merged_lora_equals_unmerged_and_restores_the_base(tiny_pipe):
    weights = random_lora(tiny_pipe)
    components = {"unet": tiny_pipe.unet, "text_encoder": tiny_pipe.text_encoder}
    before = {k: v.clone() for k, v in tiny_pipe.unet.state_dict().items()}
    base = sample_array(tiny_pipe)
    with merged_lora(components, weights):
        merged = sample_array(tiny_pipe)
    with unmerged_lora(components, weights):
        unmerged = sample_array(tiny_pipe)
    assert np.abs(merged - base).max() > 1e-3, "the LoRA should change the image"
    np.testing.assert_allclose(merged, unmerged, atol=1e-5)
    after = tiny_pipe.unet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the base weights must be restored exactly"


def test_killed_run_resumes_without_regenerating_finished_images(tiny_pipe, tmp_path):
    folder = tmp_path / "gen"
    with pytest.raises(KeyboardInterrupt):
        run(TextMethod(fail_after=2), tiny_pipe, folder, batch_size=2)
    finished = read_manifest(folder / "manifest.jsonl")
    assert 0 < len(finished) < 6
    mtimes = {i: (folder / r["file"]).stat().st_mtime_ns for i, r in finished.items()}
    resumed = TextMethod()
    report = run(resumed, tiny_pipe, folder, batch_size=2)
    made_now = {i for call in resumed.calls for i in call}
    assert made_now.isdisjoint(finished), "a finished image was generated again"
    assert report.reused == len(finished) and report.images == 6 - len(finished)
    assert all((folder / finished[i]["file"]).stat().st_mtime_ns == t for i, t in mtimes.items())
    # the resumed set is the set an unbroken run makes
    run(TextMethod(), tiny_pipe, tmp_path / "unbroken", batch_size=3)
    unbroken = read_manifest(tmp_path / "unbroken" / "manifest.jsonl")
    done = read_manifest(folder / "manifest.jsonl")
    for image_id, rec in unbroken.items():
        assert_same_image(pixels(tmp_path / "unbroken", rec), pixels(folder, done[image_id]))


def test_torn_manifest_line_and_missing_file_are_not_counted(tiny_pipe, tmp_path):
    folder = tmp_path / "gen"
    run(TextMethod(), tiny_pipe, folder, batch_size=6)
    manifest = folder / "manifest.jsonl"
    records = read_manifest(manifest)
    victim = sorted(records)[0]
    (folder / records[victim]["file"]).unlink()
    with open(manifest, "a") as f:
        f.write('{"id": "0001-0')  # a crash in the middle of a line
    assert set(read_manifest(manifest)) == set(records) - {victim}


def test_a_method_returning_the_wrong_count_fails_loudly(tiny_pipe, tmp_path):
    class Short(TextMethod):
        def sample(self, ctx, sampler, batch):
            return super().sample(ctx, sampler, batch)[:-1]

    with pytest.raises(ValueError, match="returned 1 images for 2"):
        run(Short(), tiny_pipe, tmp_path, batch_size=2)
