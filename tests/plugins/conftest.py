"""A CellContext on the demo digits and the tiny random SD, for running a method's stages directly."""

import pytest
import torch


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    from datadream_bench.datasets.demo import demo_dataset

    return demo_dataset(tmp_path_factory.mktemp("digits"))


@pytest.fixture
def make_ctx(digits, tiny_pipe):
    """make_ctx(method, shots=2, seed=0, **overrides): the method's tiny-profile config with overrides applied."""
    from datadream_bench.context import CellContext
    from datadream_bench.datasets.fewshot import draw_few_shot
    from datadream_bench.spec import CellSpec

    def make(method, shots: int = 2, seed: int = 0, progress=None, **overrides):
        config = method.Config(**{**method.profile_defaults.get("tiny", {}), **overrides})
        spec = CellSpec(
            method=method.name, dataset=digits.key, shots=shots, seed=seed, setting="synthetic",
            classifier="clip-lora", profile="tiny", sd_model="tiny:0", clip_model="tiny:0",
            method_config=config.model_dump(mode="json"), classifier_config={},
        )
        ctx = CellContext(spec=spec, config=config, dataset=digits, fewshot=draw_few_shot(digits, seed, shots),
                          device="cpu", dtype=torch.float32)
        if progress is not None:
            ctx.progress = progress
        return ctx

    return make


class RecordingSampler:
    """Stands in for the engine's Sampler: records the sampling arguments a method passes, makes no images."""

    def __init__(self, config):
        self.config = config
        self.calls = []

    def text_to_image(self, batch, **kw):
        self.calls.append(kw)
        return [object() for _ in batch]


@pytest.fixture
def recording_sampler():
    return RecordingSampler
