"""Typed specs: one cell of the grid, and the grid a `run` asks for."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .fingerprint import fingerprint


class CellSpec(BaseModel):
    """(method, dataset, shots, seed, setting, classifier, profile) and the resolved configs: all a cell depends on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    dataset: str
    shots: int
    seed: int
    setting: str
    classifier: str
    profile: str
    sd_model: str
    clip_model: str
    method_config: dict
    classifier_config: dict
    data_root: str | None = None

    def key(self) -> str:
        """The store's key for this cell: changes whenever anything it depends on changes."""
        return fingerprint(self.model_dump(mode="json", exclude={"data_root"}))

    def label(self) -> str:
        return f"{self.method}/{self.dataset}/{self.shots}-shot/seed {self.seed}/{self.setting}"
