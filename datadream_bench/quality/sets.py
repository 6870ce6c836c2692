"""Where a finished cell's files are, read from its store record and the work dir layout (runner/workdir.py).

Every view that shows or measures a cell's images (the gallery, the quality measures, the cell pages) finds them
through these functions only, so a change in how the work dir stores paths is followed in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..engine.manifest import MANIFEST, read_manifest
from ..runner.workdir import WorkDir


def resolve(root: str | Path, stored: str | Path) -> Path:
    """A path as the work dir stores it: relative paths are relative to `root`, absolute ones are kept."""
    path = Path(stored)
    return path if path.is_absolute() else Path(root) / path


def stored(root: str | Path, path: str | Path) -> str:
    """The form to store a path in: relative to `root` when it lies inside it (the work dir can move), else
    absolute."""
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class GeneratedImage:
    id: str
    label: int
    index: int
    path: Path
    prompt: str
    forced: bool | None  # a filtering method's image kept after every candidate was rejected (None: no filter)
    init_image: Path | None  # the real shot an img2img image started from
    attempt: int | None


def generated_folder(workdir: WorkDir, record: dict) -> Path | None:
    """The folder of the cell's generated set (None for a cell that generates nothing)."""
    key = (record.get("artifacts") or {}).get("generate")
    if not key:
        return None
    return workdir.generated(record["spec"]["method"], key)


def generated_images(workdir: WorkDir, record: dict) -> list[GeneratedImage]:
    """Every finished image of the cell's generated set, in (label, index) order."""
    folder = generated_folder(workdir, record)
    if folder is None:
        return []
    out = []
    for rec in read_manifest(folder / MANIFEST).values():
        init = rec.get("init_image")
        out.append(GeneratedImage(id=rec["id"], label=int(rec["label"]), index=int(rec["index"]),
                                  path=resolve(folder, rec["file"]), prompt=rec.get("prompt", ""),
                                  forced=rec.get("forced"), init_image=resolve(workdir.root, init) if init else None,
                                  attempt=rec.get("attempt")))
    return sorted(out, key=lambda g: (g.label, g.index))


def few_shot(workdir: WorkDir, record: dict) -> tuple[list[str], list[list[Path]]] | None:
    """(class names, shots per class) of the cell's few-shot draw, as saved in the work dir."""
    key = (record.get("artifacts") or {}).get("fewshot")
    if not key:
        return None
    path = workdir.fewshot(record["spec"]["dataset"], key)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return list(data["classes"]), [[resolve(workdir.root, p) for p in group] for group in data["shots"]]


def classifier_folder(workdir: WorkDir, record: dict) -> Path | None:
    key = (record.get("artifacts") or {}).get("classifier")
    return workdir.classifier(key) if key else None
