import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))  # builders: tiny dataset copies in users' layouts

from hub_cache import build_hub_cache  # noqa: E402


@pytest.fixture(scope="session")
def built_hub(tmp_path_factory):
    """An HF_HOME folder holding the shrunk paper checkpoints in hub-cache layout, built once per test session."""
    return build_hub_cache(tmp_path_factory.mktemp("hf-home"))


@pytest.fixture
def hub(built_hub, monkeypatch):
    """HF_HOME points at the shared (read-only by convention) hub cache."""
    monkeypatch.setenv("HF_HOME", str(built_hub))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return built_hub


@pytest.fixture
def hub_copy(built_hub, tmp_path, monkeypatch):
    """HF_HOME points at a private copy of the hub cache (links kept as links) that a test may damage."""
    home = tmp_path / "hf-home"
    shutil.copytree(built_hub, home, symlinks=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return home
