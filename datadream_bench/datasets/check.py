"""prepare_dataset: read a dataset copy, validate everything, and return the manifest with a report.

The runner calls this once per dataset before any model is loaded; `dd-bench datasets check` prints its report.
"""

from __future__ import annotations

from typing import Callable

from .adapter import DatasetAdapter, DatasetOptions
from .filecache import FileCache
from .images import MAX_PIXELS
from .manifest import DatasetManifest
from .validate import validate


def prepare_dataset(adapter: DatasetAdapter, options: DatasetOptions, *, shots=(16,), seeds=(0,),
                    skip_bad: bool = False, max_bad: float = 0.01, decode: str = "all", workers: int | None = None,
                    max_pixels: int = MAX_PIXELS, remember: bool = True,
                    progress: Callable[[str, int, int], None] = lambda what, done, total: None
                    ) -> tuple[DatasetManifest, dict]:
    """Raises DatasetInvalid (a UsageError) listing every problem; else (manifest, report).

    remember: keep each file's digest and clean decode in <work_dir>/cache/files.sqlite, so that the next check
    reads only files that are new or changed (size or mtime).
    """
    collect = getattr(adapter, "collect", None)
    if collect is not None:
        manifest, problems = collect(options)
    else:  # a third-party adapter: its own load() raises on what it finds; the checks below still run
        manifest, problems = adapter.load(options), []
    info = getattr(adapter, "info", None)
    return validate(manifest, problems, num_classes=adapter.num_classes,
                    coop_sizes=info.coop_sizes if info is not None else None, shots=tuple(shots),
                    seeds=tuple(seeds), skip_bad=skip_bad, max_bad=max_bad, decode=decode, workers=workers,
                    max_pixels=max_pixels,
                    cache=FileCache(options.work_dir / "cache" / "files.sqlite" if remember else None),
                    progress=progress)
