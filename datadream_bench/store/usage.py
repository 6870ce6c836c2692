"""What a work dir holds on disk, per kind of artifact and method, and which of it no result in the store uses.

Artifacts are folders (or files) keyed by a fingerprint: adapt/<method>/<key>, generated/<method>/<key>,
classifier/<key>, fewshot/<dataset>/<key>.json. A result's record names the keys it used, so an artifact no record
names is work of a run not finished yet, or of settings no run asks for any more (older code, other overrides). The
rest (the decoded-image cache, dataset manifests, quality features, the store) is shared and counted as such.
Sizes are what the files take on the disk (allocated blocks), as `du` counts them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# kind -> (folder under the work dir, whether its artifacts are grouped per method or per dataset)
KEYED = {"adapt": "adapt", "generate": "generated", "classifier": "classifier", "fewshot": "fewshot"}
GROUPED = {"adapt", "generate", "fewshot"}


@dataclass
class Artifact:
    kind: str  # adapt | generate | classifier | fewshot | shared
    group: str  # the method (adapt, generate), the dataset (fewshot), the file or folder (shared), "" otherwise
    key: str
    path: Path
    files: int
    bytes: int
    used_by: int | None  # cells in the store whose record names this key; None for shared files
    claimed: bool = False  # a process holds a claim inside it: work in progress

    @property
    def unused(self) -> bool:
        return self.used_by == 0 and not self.claimed


def disk_usage(path: Path) -> tuple[int, int, bool]:
    """(files, bytes on the disk, whether a claim file is among them) of a file or a folder tree, in one walk (a
    paper-size set holds tens of thousands of files); links are not followed."""
    if path.is_file():
        return 1, _allocated(path.lstat()), path.suffix == ".claim"
    files = size = 0
    claimed = False
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:  # removed while we walk (a temporary file renamed into place)
                continue
            files += 1
            size += _allocated(st)
            claimed = claimed or name.endswith(".claim")
    return files, size, claimed


def _allocated(st: os.stat_result) -> int:
    return st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size


def used_keys(records: list[dict]) -> Counter:
    """(kind, key) -> how many result records name it."""
    return Counter((kind, key) for rec in records for kind, key in (rec.get("artifacts") or {}).items())


def work_dir_usage(root: Path, records: list[dict]) -> list[Artifact]:
    """Every artifact of the work dir at root, and the shared rest, with the cells of `records` that use each."""
    root = Path(root)
    used = used_keys(records)
    out: list[Artifact] = []
    for kind, folder in KEYED.items():
        base = root / folder
        if not base.is_dir():
            continue
        groups = sorted(p for p in base.iterdir() if p.is_dir()) if kind in GROUPED else [base]
        for group in groups:
            for path in sorted(group.iterdir()):
                key = path.name.removesuffix(".json")
                files, size, claimed = disk_usage(path)
                out.append(Artifact(kind, group.name if kind in GROUPED else "", key, path, files, size,
                                    used[(kind, key)], claimed))
    keyed = {root / folder for folder in KEYED.values()}
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path not in keyed:
            files, size, _ = disk_usage(path)
            out.append(Artifact("shared", path.name, path.name, path, files, size, None))
    return out
