"""A full disk, said as such: which work dir, how much is free there, and about how much more the grid needs.

A write that fails for want of space can surface as an OSError (ENOSPC), an SQLite "database or disk is full", or a
library's own error that carries the OS message (safetensors: "No space left on device (os error 28)"), often
wrapped in another exception: is_disk_full looks through the whole chain.
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
DISK_FULL_TEXT = ("no space left on device", "database or disk is full", "os error 28", "disk quota exceeded")
# numpy's write to a file (np.save, tofile) reports a full disk as a short write, without an errno.
SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def is_disk_full(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(exc).lower() for text in DISK_FULL_TEXT):
            return True
        if isinstance(exc, OSError) and exc.errno is None and SHORT_WRITE.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds path (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def images_to_make(cells, workdir) -> tuple[int, float | None]:
    """(images the cells' generated sets still lack, mean bytes of a generated image so far or None).

    Counts are runner.generation.count_sets'; the size per image is what the first 200 recorded files of each set
    take on the disk (whole blocks, so a filesystem that rounds small files up is counted as it fills).
    """
    from .runner.generation import count_sets

    missing, sizes = 0, []
    for s in count_sets(cells, workdir):
        missing += max(0, (s.planned or 0) - len(s.done))
        for rec in list(s.done.values())[:200]:
            try:
                st = (s.folder / rec["file"]).stat()
            except FileNotFoundError:  # recorded but gone: it will be made again
                continue
            sizes.append(max(st.st_size, st.st_blocks * 512))
    return missing, (sum(sizes) / len(sizes) if sizes else None)


def check_free_space(cells, workdir) -> None:
    """Before any work: a usage error when the images the grid still has to make cannot fit in the work dir's free
    space, at the size its images take so far. Nothing is said when no image of these sets exists yet (the size is
    then unknown: a full disk is met and reported when it comes)."""
    from .errors import UsageError

    missing, per_image = images_to_make(cells, workdir)
    if not missing or per_image is None:
        return
    root, need = Path(workdir.root), missing * per_image
    free = free_bytes(root)
    if free < need:
        raise UsageError(f"not enough space: the work dir {root} has {human(free)} free, and the {missing} images "
                         f"still to make need about {human(need)} (at {human(per_image)} per image so far), besides "
                         "the LoRAs and classifier states. Free space or give another --work-dir")


def disk_full_message(cells, workdir) -> str:
    """What a cell that ran out of space reports: the work dir, the space free, the space the rest needs."""
    root = Path(workdir.root)
    free = free_bytes(root)
    try:
        missing, per_image = images_to_make(cells, workdir)
    except OSError:  # a manifest or image that cannot even be read: say what is known
        missing, per_image = 0, None
    if missing and per_image:
        need = (f"the {missing} images still to make need about {human(missing * per_image)} more "
                f"(at {human(per_image)} per image so far), besides the LoRAs and classifier states")
    elif missing:
        need = f"{missing} images are still to make, besides the LoRAs and classifier states"
    else:
        need = "the remaining LoRAs, classifier states and results need a little more"
    return (f"disk full: the work dir {root} has {human(free)} free; {need}. Free space (or give another "
            "--work-dir) and rerun the same command: finished work is kept and reused")


def disk_full_before_cells(root: Path, exc: BaseException) -> str:
    """What a run says when the disk is full before any cell starts (writing a dataset copy, the planned cells)."""
    return (f"disk full: the work dir {root} has {human(free_bytes(root))} free, too little to prepare the run "
            f"({exc}). Free space (or give another --work-dir) and rerun the same command")
