"""Where a model's files are: a local folder, a snapshot in the local Hugging Face cache, or a tiny model built in
code. Never downloads.

A hub id is looked up the way the hub library lays out its cache: <cache>/models--org--name/refs/<revision> holds a
commit, snapshots/<commit>/ holds the files as relative links into blobs/. The cache folder is read from the
environment at each call (HF_HUB_CACHE, HF_HOME), so a process can point at another cache without restarting.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError

COMMIT = re.compile(r"[0-9a-f]{40}")
KIND_NAMES = {"sd": "Stable Diffusion pipeline", "clip": "CLIP model", "captioner": "captioning model"}


@dataclass(frozen=True)
class Location:
    source: str  # as the user spelled it: recorded for provenance, never part of a key
    root: Path  # the checkpoint's folder, absolute and free of links
    repo_id: str | None = None  # set when found in the Hugging Face cache
    revision: str | None = None  # the snapshot's commit

    def describe(self) -> dict:
        out = {"source": self.source, "root": str(self.root)}
        if self.repo_id:
            out.update(repo_id=self.repo_id, revision=self.revision)
        return out


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it, from the environment as it is now."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        home = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    return Path(home).expanduser() / "hub"


def looks_like_hub_id(source: str) -> bool:
    """"org/name" or "org/name@revision": one slash, not a path that starts with ., / or ~."""
    name = source.split("@", 1)[0]
    return name.count("/") == 1 and not source.startswith((".", "/", "~")) and all(name.split("/"))


def locate(source: str, kind: str) -> Location:
    """The folder of `source`: "tiny:<seed>" (built once per machine), a local folder, or a hub id ("org/name",
    optionally "@revision") in the local cache. Raises ModelNotFoundError saying where it looked."""
    if source.startswith("tiny:"):
        if kind not in ("sd", "clip"):
            raise ModelNotFoundError(f"{source!r}: tiny models are built for sd and clip only, not for a {kind}")
        return Location(source, tiny_folder(kind, int(source.split(":", 1)[1])).resolve())
    path = Path(source).expanduser()
    if path.is_dir():
        return Location(source, path.resolve())
    looked = [f"a local folder {path.absolute()} (not found)"]
    if looks_like_hub_id(source):
        repo_id, _, revision = source.partition("@")
        found = in_cache(repo_id, revision or "main")
        if isinstance(found, Location):
            return Location(source, found.root, found.repo_id, found.revision)
        looked.append(found)
    what = KIND_NAMES.get(kind, f"{kind} model")
    how = f"--{kind}-model /path/to/folder" if kind in ("sd", "clip") else "a local folder"
    raise ModelNotFoundError(
        f"{what} {source!r} not found. Looked in: " + "; ".join(looked) + ". "
        f"Provide it with {how} (a diffusers/transformers save_pretrained folder), or put it in the Hugging Face "
        f"cache on a machine with network (`hf download {source.partition('@')[0]}`) and copy the cache folder "
        f"(point HF_HOME or HF_HUB_CACHE at it)."
    )


def in_cache(repo_id: str, revision: str) -> Location | str:
    """The snapshot of repo_id at revision (a branch, tag or commit) in the hub cache, or why it is not there."""
    cache = hub_cache()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    if not repo.is_dir():
        return f"the Hugging Face cache {cache} (no {repo.name})"
    ref = repo / "refs" / revision
    if COMMIT.fullmatch(revision):
        commit = revision
    elif ref.is_file():
        commit = ref.read_text().strip()
    else:
        return f"the Hugging Face cache {cache} ({ref} missing: no snapshot of {revision!r})"
    snapshot = repo / "snapshots" / commit
    if not snapshot.is_dir():
        return f"the Hugging Face cache {cache} ({ref} names commit {commit}, but {snapshot} is missing)"
    return Location(repo_id, snapshot.resolve(), repo_id, commit)


def tiny_folder(kind: str, seed: int) -> Path:
    """A tiny random model of `kind` saved once per machine under the temp folder (tests, plugin checks)."""
    from . import tiny

    folder = Path(tempfile.gettempdir()) / "dd-bench-tiny" / f"{kind}-{seed}"
    if not (folder / "done").exists():
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        (tiny.save_tiny_sd if kind == "sd" else tiny.save_tiny_clip)(tmp, seed)
        (tmp / "done").touch()
        if folder.exists():  # another process finished first: its copy is identical
            shutil.rmtree(tmp)
        else:
            tmp.replace(folder)
    return folder
