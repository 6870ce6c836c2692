"""Shared fixtures: tiny random models built in code (never downloaded), offline hub, quiet libraries."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_pipe():
    """The tiny random Stable Diffusion pipeline, loaded once (the same object the runner gets for "tiny:0")."""
    from datadream_bench.models.loading import load_sd

    return load_sd("tiny:0")


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
