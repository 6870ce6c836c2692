"""The one internal form of a dataset: canonical classes and per-split (path, label) lists, with a fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..fingerprint import file_digest, fingerprint

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


@dataclass(frozen=True)
class DatasetManifest:
    key: str
    classes: tuple[str, ...]
    splits: dict[str, tuple[Sample, ...]]
    prompt_word: str = ""  # DataDream's dataset word, e.g. "satellite " -> "a satellite photo of a Forest"
    template: str = "a photo of a {}."  # CoOp's zero-shot template, filled with the canonical (CoOp) class names
    source: str = ""  # which layout it was read from (recorded in every result row)
    protocol: str = "standard"  # which split protocol: test on test, select on val
    meta: dict = field(default_factory=dict)
    # The names prompts use, by label (datasets.prompt_names); empty: the class names. `names` says which list.
    prompt_names: tuple[str, ...] = ()
    names: str = ""

    def split(self, name: str) -> tuple[Sample, ...]:
        return self.splits.get(name, ())

    def by_class(self, split: str) -> list[list[Sample]]:
        groups: list[list[Sample]] = [[] for _ in self.classes]
        for s in self.split(split):
            groups[s.label].append(s)
        return groups

    def prompt_name(self, label: int) -> str:
        return self.prompt_names[label] if self.prompt_names else self.classes[label]

    def prompt(self, label: int) -> str:
        """DataDream's prompt (SD fine-tuning, generation, the classifier head): "a {word}photo of a {name}"."""
        return f"a {self.prompt_word}photo of a {self.prompt_name(label)}"

    def zero_shot_prompt(self, label: int) -> str:
        """CoOp's zero-shot prompt: the dataset's template with the canonical name, underscores as spaces (as CoOp
        fills it), e.g. "a centered satellite photo of Annual Crop Land."."""
        return self.template.format(self.classes[label].replace("_", " "))

    def fingerprint(self) -> str:
        """Content fingerprint: classes, and per split the (image bytes digest, label) pairs; paths do not count."""
        cached = self.meta.get("_fingerprint")
        if cached:
            return cached
        digests = self.meta.get("_digests") or {}  # filled by validation, which reads every file once anyway
        content = {
            "classes": list(self.classes),
            "splits": {
                name: sorted([digests.get(s.path) or file_digest(s.path), s.label] for s in samples)
                for name, samples in sorted(self.splits.items())
            },
        }
        fp = fingerprint(content)
        self.meta["_fingerprint"] = fp
        return fp

    def summary(self) -> dict:
        return {
            "key": self.key,
            "classes": len(self.classes),
            "splits": {k: len(v) for k, v in self.splits.items()},
            "source": self.source,
            "protocol": self.protocol,
            "names": self.names or "class names",
            "fingerprint": self.fingerprint(),
        }


def relative_to(path: str | Path, root: str | Path) -> str:
    return str(Path(path).resolve().relative_to(Path(root).resolve()))
