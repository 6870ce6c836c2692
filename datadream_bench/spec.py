"""Typed specs: one cell of the grid, and the grid a `run` asks for."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .fingerprint import fingerprint


# Where and how fast a cell runs, never what it computes: left out of its key.
UNKEYED = {"data_root", "runtime", "data", "work_dir"}


class CellSpec(BaseModel):
    """(method, dataset, shots, seed, setting, classifier, profile), the resolved configs and the fingerprints of
    the data and models: all that a cell's result depends on."""

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
    precision: str = "fp32"
    # Content fingerprints: {"dataset": ..., "sd": ..., "clip": ...}. A changed checkpoint or dataset at the same
    # path changes the key, so a stale result is never served.
    inputs: dict = Field(default_factory=dict)
    data_root: str | None = None
    runtime: dict = Field(default_factory=dict)  # settings that change speed, never results (batch size, device)
    # How another process finds and reads the inputs again (build_cell): per-dataset options, and decode, skip_bad,
    # max_bad of the dataset check. Not part of the key: the content fingerprints in `inputs` are.
    data: dict = Field(default_factory=dict)
    work_dir: str | None = None  # absolute

    def key(self) -> str:
        """The store's key for this cell: changes whenever anything its result depends on changes.

        Models count by content (inputs), not by how their path was spelled: sd_model, clip_model and the method
        settings that name a model (inputs["models"]) are recorded, not keyed. Where and how fast it runs
        (UNKEYED) does not count either."""
        fields = self.model_dump(mode="json", exclude=UNKEYED | {"sd_model", "clip_model"})
        for setting in self.inputs.get("models") or {}:
            fields["method_config"].pop(setting, None)
        return fingerprint(fields)

    def label(self) -> str:
        return f"{self.method}/{self.dataset}/{self.shots}-shot/seed {self.seed}/{self.setting}"


class RunRequest(BaseModel):
    """What `dd-bench run` asks for, before names are resolved: "all" expands to every installed method/dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: list[str]
    datasets: list[str] | None = None  # None: the profile's default dataset
    shots: list[int] | None = None  # None: the profile's default shot count
    seeds: list[int] = [0, 1, 2]
    settings: list[str] | None = None  # None: every setting each method supports
    classifier: str = "clip-lora"
    profile: str = "demo"
    work_dir: Path = Path("dd-bench-work")
    data_root: Path | None = None
    dataset_options: dict[str, dict] = Field(default_factory=dict)  # per-dataset overrides (source, path, ...)
    overrides: dict = Field(default_factory=dict)  # parsed --set key=value pairs
    sd_model: str | None = None  # replaces the profile's
    clip_model: str | None = None
    device: str | None = None  # None: cuda if available, else cpu
    precision: str | None = None  # fp32 | bf16 | fp16; None: bf16/fp16 on cuda, fp32 on cpu
    batch_size: int | None = None  # generation batch; None: the method's
    compile: bool = False  # torch.compile the UNet: pays off on long GPU runs (the first call compiles for ~1 min)
    skip_bad: bool = False  # drop undecodable images (counted in the record) instead of stopping
    max_bad: float = 0.01  # ...but stop past this fraction of a split (or this many rows, if >= 1)
    decode: str = "all"  # which images are fully decoded before any model loads: all | fewshot (huge datasets)
