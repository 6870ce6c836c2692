"""Shared fixtures: offline hub, quiet libraries, the third-party fixture distributions. The stage fixtures
(tiny_pipe, digits, make_ctx, recording_sampler) come from the datadream_bench.testing pytest plugin."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def example_plugin(monkeypatch):
    """Put the third-party example distribution (and a broken one) on sys.path, as `pip install` would."""
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins"))
    yield FIXTURES / "plugins"


@pytest.fixture
def forbid_model_loads(monkeypatch):
    """Any attempt to load model weights fails the test: for checks that must finish before expensive work."""
    import diffusers
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", refuse)
