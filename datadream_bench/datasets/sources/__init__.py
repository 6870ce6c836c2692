"""Where a copy of a paper dataset can come from; auto-detection tries them in this order."""

from __future__ import annotations

from pathlib import Path

from ...errors import UsageError
from . import coop, csv_split, folders, hf, torchvision_roots

SOURCES = {"coop": coop, "csv": csv_split, "torchvision": torchvision_roots, "hf": hf, "folder": folders}


def locate(info, source: str, base: Path) -> tuple[str, Path]:
    """(source, folder) for an explicit or "auto" source under base; the error says what was looked for."""
    if source != "auto" and source not in SOURCES:
        raise UsageError(f"unknown dataset source {source!r}; valid: auto, {', '.join(SOURCES)}")
    if not base.is_dir():
        raise UsageError(f"{info.key}: {base} is not a folder")
    names = list(SOURCES) if source == "auto" else [source]
    for name in names:
        found = SOURCES[name].find(info, base)
        if found is not None:
            return name, found
    searched = "\n".join(f"  {name}: {SOURCES[name].looked_for(info)}" for name in names)
    raise UsageError(f"no copy of {info.key} found under {base} (also tried the folder names "
                     f"{', '.join(info.dirs)}); looked for:\n{searched}")
