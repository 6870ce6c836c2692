"""Validation of a compiled dataset, before any model is loaded: every failure found, then all raised at once.

Checks: class count; every class in every split; missing files; image extensions; train/test overlap (by content);
a file's class folder against its label; k against the smallest class; every image fully decoded (or only the
few-shot images, decode="fewshot"). skip_bad=True drops bad files instead of failing, counts them in the report, and
still fails past max_bad (a fraction of all rows if < 1, else a number of files).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..fingerprint import file_digest
from .filecache import FileCache
from . import protocol as protocols
from .fewshot import draw_few_shot
from .images import MAX_PIXELS, BadImageError, check_extension, load_rgb
from .manifest import DatasetManifest, Sample
from .problems import DatasetInvalid, Problem

_LISTED = 200  # skipped files listed by name in the report (all are counted)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def validate(manifest: DatasetManifest, problems: list[Problem], *, num_classes: int | None = None,
             coop_sizes: tuple[int, int, int] | None = None, shots=(), seeds=(), skip_bad: bool = False,
             max_bad: float = 0.01, decode: str = "all", workers: int | None = None,
             max_pixels: int = MAX_PIXELS, cache: FileCache | None = None,
             progress: Callable[[str, int, int], None] = lambda what, done, total: None
             ) -> tuple[DatasetManifest, dict]:
    if decode not in ("all", "fewshot"):
        raise UsageError(f"decode must be 'all' or 'fewshot', not {decode!r}")
    t0 = time.perf_counter()
    workers = workers or default_workers()
    problems = list(problems)
    origin = manifest.meta.get("origin", {})
    root = manifest.meta.get("root", "")

    # Files: existence and extension first (cheap), then one read each for the content digest.
    bad: dict[str, str] = {}
    for split, samples in manifest.splits.items():
        for s in samples:
            if s.path in bad:
                continue
            if not os.path.isfile(s.path):
                bad[s.path] = f"missing file (named by {origin.get(split, split)})"
                continue
            try:
                check_extension(s.path)
            except BadImageError as e:
                bad[s.path] = e.reason
    paths = sorted({s.path for samples in manifest.splits.values() for s in samples} - set(bad))
    cache = cache or FileCache(None)
    digests, read = cache.digests(paths, file_digest, workers,
                                  lambda done, total: progress(f"{manifest.key}: read files", done, total))
    t_digest = time.perf_counter()

    # Decoding: every image, or (decode="fewshot") the few-shot draws only, below.
    decoded = 0
    if decode == "all":
        decoded = _decode(paths, bad, workers, max_pixels, cache,
                          lambda done, total: progress(f"{manifest.key}: decode images", done, total))
    t_decode = time.perf_counter()

    skipped: list[Problem] = []
    skipped_by_split: dict[str, int] = {}
    if skip_bad:
        unread = [p for p in problems if p.kind == "file"]  # rows the source could not use (never in a split)
        skipped = unread + [Problem(p, r) for p, r in sorted(bad.items())]
        problems = [p for p in problems if p.kind != "file"]
        skipped_by_split = {name: sum(s.path in bad for s in samples) for name, samples in manifest.splits.items()}
        skipped_by_split["unread rows"] = len(unread)
    else:
        problems += [Problem(p, r) for p, r in sorted(bad.items())]
    # The rest is checked on the usable files (in default mode, only to report the remaining problems too).
    splits = {name: tuple(s for s in samples if s.path not in bad) for name, samples in manifest.splits.items()}
    manifest = dataclasses.replace(manifest, splits=splits, meta={k: v for k, v in manifest.meta.items()
                                                                  if k != "_fingerprint"})
    manifest.meta["_digests"] = digests

    if not protocols.tests_on_train(manifest.key, manifest.protocol):
        overlap = _overlap(manifest, digests)
        if skip_bad and overlap:  # the test copy goes: what is evaluated was never trained on
            leaked = {p.path for p in overlap}
            manifest.splits["test"] = tuple(s for s in manifest.split("test") if s.path not in leaked)
            skipped += overlap
            skipped_by_split["test"] = skipped_by_split.get("test", 0) + len(overlap)
        else:
            problems += overlap

    names = manifest.classes
    if num_classes is not None and names and len(names) != num_classes:
        problems.append(Problem(root, f"{len(names)} classes found, expected {num_classes}", kind="data"))
    for split, samples in manifest.splits.items():
        counts = Counter(s.label for s in samples)
        for label, name in enumerate(names):
            if counts[label] == 0:
                problems.append(Problem(origin.get(split, root), f"class {name!r} has no images in split {split!r}",
                                        kind="data"))
    for need in ("train", "test"):
        if not manifest.split(need):
            problems.append(Problem(root, f"no {need} split", kind="data"))
    if manifest.meta.get("class_folders"):
        problems += _folder_disagreements(manifest)

    fewshot: dict = {}
    k_max = max(shots) if shots else 0
    if k_max and manifest.split("train") and names:
        sizes = [len(g) for g in manifest.by_class("train")]
        short = [(names[i], n) for i, n in enumerate(sizes) if n < k_max]
        for name, n in short:
            problems.append(Problem(origin.get("train", root), f"{k_max}-shot needs {k_max} train images per class; "
                                                               f"class {name!r} has {n}", kind="data"))
        if not short:
            for seed in seeds:
                draw = draw_few_shot(manifest, seed, k_max)
                if decode == "fewshot":
                    shot_bad: dict[str, str] = {}
                    decoded += _decode([s.path for s in draw.samples], shot_bad, workers, max_pixels, cache)
                    problems += [Problem(p, f"few-shot image (seed {seed}): {r}") for p, r in sorted(shot_bad.items())]
                fewshot[str(seed)] = {str(k): draw_few_shot(manifest, seed, k).fingerprint() for k in sorted(shots)}

    total = sum(len(v) for v in manifest.splits.values()) + len(skipped)
    cap = max_bad * total if max_bad < 1 else max_bad
    if skipped and len(skipped) > cap:
        problems.append(Problem(root, f"{len(skipped)} bad files of {total} is over the skip-bad cap of "
                                      f"{_cap_text(max_bad)}", kind="data"))

    report = {
        "dataset": manifest.key,
        "source": manifest.source,
        "root": root,
        "protocol": manifest.protocol,
        "names": manifest.names or "class names",  # which list prompts spell classes with
        "classes": len(names),
        "expected_classes": num_classes,
        "splits": {k: len(v) for k, v in manifest.splits.items()},
        "coop_splits": dict(zip(("train", "val", "test"), coop_sizes)) if coop_sizes else None,
        "smallest_class": _smallest(manifest),
        "skip_bad": skip_bad,
        "skipped": {"count": len(skipped), "cap": _cap_text(max_bad),
                    "by_split": skipped_by_split,
                    "files": [{"path": p.path, "reason": p.reason} for p in skipped[:_LISTED]]},
        "ignored_files": manifest.meta.get("ignored_files", 0),
        # read/decoded count the files this run opened; the others were known unchanged from an earlier check
        "checked": {"files": len(paths), "read": read, "decoded": decoded, "decode": decode},
        "notes": list(manifest.meta.get("notes", [])),
        "fewshot": fewshot,
        "seconds": {"digest": round(t_digest - t0, 3), "decode": round(t_decode - t_digest, 3)},
        "valid": not problems,
        "problems": [{"path": p.path, "reason": p.reason} for p in problems],
    }
    if problems:
        raise DatasetInvalid(manifest.key, problems, report)
    report["fingerprint"] = manifest.fingerprint()
    report["seconds"]["total"] = round(time.perf_counter() - t0, 3)
    return manifest, report


def _decode(paths: list[str], bad: dict[str, str], workers: int, max_pixels: int, cache: FileCache,
            progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Decode every path not known to decode already; bad ones go into `bad`. Returns how many were decoded."""
    candidates = [p for p in paths if p not in bad]
    good_before = cache.known_to_decode(candidates)
    todo = [p for p in candidates if p not in good_before]

    def one(path: str) -> tuple[str, str | None]:
        try:
            load_rgb(path, max_pixels)
            return path, None
        except BadImageError as e:
            return path, e.reason

    good = []
    with ThreadPoolExecutor(workers) as pool:  # Pillow releases the GIL while decoding
        for i, (path, reason) in enumerate(pool.map(one, todo)):
            if i % 256 == 0:
                progress(len(candidates) - len(todo) + i, len(candidates))
            if reason is not None:
                bad[path] = reason
            else:
                good.append(path)
    progress(len(candidates), len(candidates))
    cache.mark_decoded(good)
    return len(todo)


def _overlap(manifest: DatasetManifest, digests: dict[str, str]) -> list[Problem]:
    train = {}
    for s in manifest.split("train"):
        if s.path in digests:
            train.setdefault(digests[s.path], s.path)
    out = []
    for s in manifest.split("test"):
        other = train.get(digests.get(s.path))
        if other is not None:
            same = "the same file" if other == s.path else f"the same image as train file {other}"
            out.append(Problem(s.path, f"test image is {same} (train/test overlap)", kind="data"))
    return out


def _folder_disagreements(manifest: DatasetManifest) -> list[Problem]:
    """In a one-folder-per-class layout, a file whose label differs from its folder-mates' is mislabelled."""
    by_folder: dict[str, list[Sample]] = {}
    for samples in manifest.splits.values():
        for s in samples:
            by_folder.setdefault(str(Path(s.path).parent), []).append(s)
    out = []
    for folder, group in sorted(by_folder.items()):
        counts = Counter(s.label for s in group)
        if len(counts) < 2:
            continue
        owner, n = counts.most_common(1)[0]
        for s in sorted({s for s in group if s.label != owner}, key=lambda s: s.path):
            out.append(Problem(s.path, f"labelled {manifest.classes[s.label]!r} but lies in folder "
                                       f"{Path(folder).name!r}, whose other {n} images are labelled "
                                       f"{manifest.classes[owner]!r}", kind="data"))
    return out


def _smallest(manifest: DatasetManifest) -> dict:
    out = {}
    for split in manifest.splits:
        groups = manifest.by_class(split)
        if groups:
            i = min(range(len(groups)), key=lambda j: len(groups[j]))
            out[split] = {"class": manifest.classes[i], "images": len(groups[i])}
    return out


def _cap_text(max_bad: float) -> str:
    return f"{max_bad:.1%} of rows" if max_bad < 1 else f"{int(max_bad)} files"
