"""A run request's values, checked in one place before any dataset is read or model loaded.

Each bad value is a UsageError that names the option, the value and what is expected. The typed configs of methods
and classifiers carry their own bounds (config.resolve_config turns their errors into usage errors); this module
checks what types alone cannot: lists that came out empty, seeds that the store and the random generators accept, a
device that exists on this machine, a work dir that is a writable folder, a results store that is readable.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from .errors import UsageError

# SQLite's INTEGER and torch's manual_seed both take signed 64-bit numbers.
MAX_SEED = 2**63 - 1
DEVICES = "cpu, cuda, cuda:N or mps"


def check_request(request, devices_here: bool = True) -> None:
    """Every value of a RunRequest that can be checked without reading data or loading a model. devices_here False:
    the cells run on other machines (a Ray cluster), so the device must be a valid name, not one this machine has."""
    for option, values in (("--method", request.methods), ("--dataset", request.datasets),
                           ("--shots", request.shots), ("--seeds", request.seeds), ("--setting", request.settings)):
        if values is not None and not values:
            raise UsageError(f"{option}: no value given; expected at least one")
    check_seeds(request.seeds)
    for k in request.shots or []:
        if k < 1:
            raise UsageError(f"--shots {k}: expected a whole number of real images per class, at least 1")
    if request.batch_size is not None and request.batch_size < 1:
        raise UsageError(f"--batch-size {request.batch_size}: expected a whole number of images per batch, "
                         "at least 1")
    if not (math.isfinite(request.max_bad) and request.max_bad >= 0):
        raise UsageError(f"--max-bad {request.max_bad}: expected a fraction of rows below 1 or a file count, "
                         "finite and not negative")
    check_device(request.device, here=devices_here)
    check_work_dir(Path(request.work_dir))


def check_seeds(seeds) -> None:
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise UsageError(f"--seeds {seed}: expected a whole number from 0 to 2**63-1 ({MAX_SEED}), the range "
                             "the results store and the random generators take")


def check_device(device: str | None, here: bool = True) -> None:
    """A device that this machine has (here False: a device name that dd-bench runs on, for cells that run
    elsewhere): its kind is built into torch and present, and its index exists."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r}: not a device name; expected {DEVICES}") from None
    if parsed.type == "cpu" or (not here and parsed.type in ("cuda", "mps")):
        return
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UsageError(f"--device {device}: CUDA is not available ({why}); expected cpu on this machine")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA device(s); expected cuda or "
                             f"cuda:0 to cuda:{count - 1}")
        return
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"--device {device}: Apple's MPS is not available on this machine; expected cpu"
                             + (" or cuda" if torch.cuda.is_available() else ""))
        return
    raise UsageError(f"--device {device}: dd-bench does not run on {parsed.type} devices; expected {DEVICES}")


def check_work_dir(path: Path) -> None:
    """A folder (made if missing) where a file can be written: found now, not when the first artifact is saved."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--work-dir {path}: is a file; expected a folder (created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--work-dir {path}: cannot be created ({e.strerror}); expected a folder you can "
                         "write to") from None
    try:
        # A real write, not os.access: root passes access checks on a read-only filesystem.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"--work-dir {path}: cannot be written to ({e.strerror}); expected a folder you can "
                         "write to") from None
    from .store.results import check_store

    check_store(path / "results.sqlite")
