"""What a checkpoint of each kind must hold, which of its files a load reads, and whether each can be read.

open_checkpoint() finds the checkpoint (hub.locate), picks the files the libraries will load, and opens each one far
enough to know it is whole, loading no tensor: a JSON file parses, a safetensors header parses (the library checks
that its tensors fit in the file), a .bin is a PyTorch archive whose directory reads. So a missing, empty,
truncated or dangling file is a usage error naming it, found before any model loads.

Which files:
- weights: safetensors before .bin when both are there (a .bin is only ever loaded by transformers or diffusers,
  which load it with torch.load(weights_only=True)); a sharded checkpoint's index and every shard it names.
- Stable Diffusion's fp16 variant (`diffusion_pytorch_model.fp16.safetensors`, `model.fp16.safetensors`): used when
  the run is in half precision, or when a component has only the variant; a component without the variant then
  loads its full-precision file, as diffusers does. The choice is recorded (describe()).

A checkpoint's fingerprint is a hash of the bytes of those files, so it changes whenever the weights do and never
with how the path is spelled. A file in the hub cache is a link to blobs/<sha256 of its bytes> (large files are
stored that way): that name is its digest, read without reading the file. Any other file is hashed once and
remembered by (path, size, mtime) in the work directory's file cache.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..fingerprint import file_digest, fingerprint
from .hub import KIND_NAMES, Location, locate

HALF_VARIANT = "fp16"
HALF_PRECISIONS = ("fp16", "bf16")
SD_MODELS = ("unet", "vae", "text_encoder")  # the pipeline components that hold weights
SD_COMPONENTS = SD_MODELS + ("tokenizer", "scheduler")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")
SHA256 = re.compile(r"[0-9a-f]{64}")
# The first bytes of a PyTorch file written before torch 1.6 (pickle protocol 2, then torch's magic number).
LEGACY_TORCH_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")
WHAT_IS_NEEDED = {
    "sd": "a diffusers Stable Diffusion pipeline: model_index.json naming unet, vae, text_encoder, tokenizer and "
          "scheduler, each in its subfolder",
    "clip": "a transformers CLIP model: config.json with a CLIP config (model_type 'clip'), its weights and "
            "tokenizer files",
    "captioner": "a transformers image-to-text model: config.json, its weights, tokenizer files and "
                 "preprocessor_config.json",
}


class CheckpointInvalid(UsageError):
    """A checkpoint is there but cannot be loaded as it is: a file missing, empty, truncated or of the wrong kind."""


@dataclass(frozen=True)
class Checkpoint:
    location: Location
    kind: str
    files: dict[str, Path]  # every file a load reads, by its name relative to the checkpoint folder
    weights: tuple[str, ...]  # the weight files among them
    variant: str | None = None  # the weights variant a load must ask for ("fp16"), or None

    @property
    def root(self) -> Path:
        return self.location.root

    def load_kwargs(self) -> dict:
        """from_pretrained's format arguments that load exactly the files checked here."""
        safetensors = [name.endswith((".safetensors", ".safetensors.index.json")) or ".safetensors.index." in name
                       for name in self.weights]
        if all(safetensors):
            use = True
        elif self.kind == "sd" and any(safetensors):
            use = None  # some components only have .bin: diffusers picks safetensors per component where it exists
        else:
            use = False
        return {"use_safetensors": use, **({"variant": self.variant} if self.variant else {})}

    def stamp(self) -> tuple:
        """Size, mtime and inode of every file: a cheap key of an in-memory copy, that changes when a file does."""
        out = []
        for name, path in sorted(self.files.items()):
            st = os.stat(path)
            out.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
        return tuple(out)

    def digests(self, cache=None) -> dict[str, str]:
        """name -> sha256 of the file's bytes (from the blob name in a hub cache, else hashed or remembered)."""
        from ..datasets.filecache import FileCache

        real = {name: os.path.realpath(path) for name, path in self.files.items()}
        known = {name: Path(r).name for name, r in real.items()
                 if Path(r).parent.name == "blobs" and SHA256.fullmatch(Path(r).name)}
        todo = sorted({r for name, r in real.items() if name not in known})
        hashed, _ = (cache or FileCache(None)).digests(todo, file_digest, workers=2)
        return {name: known.get(name) or hashed[real[name]] for name in self.files}

    def fingerprint(self, cache=None) -> str:
        return fingerprint({"kind": self.kind, "files": self.digests(cache)})

    def describe(self) -> dict:
        """What a result row records about the checkpoint: where it was found, which files were loaded."""
        return {**self.location.describe(), "kind": self.kind, "variant": self.variant, "weights": list(self.weights)}


def open_checkpoint(source: str, kind: str, precision: str = "fp32", option: str | None = None) -> Checkpoint:
    """Find `source`, pick the files a load of `kind` reads, and check that each can be read (no tensor loaded).

    option names where the source came from in messages ("--clip-model", "disef.filter_model")."""
    location = locate(source, kind)
    layout = LAYOUTS.get(kind, transformers_layout)
    try:
        files, weights, variant = layout(location.root, precision)
        for name, path in files.items():
            check_file(path, name)
    except CheckpointInvalid as e:
        what = KIND_NAMES.get(kind, f"{kind} model")
        where = f"{option} {source!r}" if option else f"{what} {source!r}"
        raise CheckpointInvalid(f"{where}: {e}") from None
    return Checkpoint(location, kind, files, weights, variant)


# ------------------------------------------------------------------------------------------------ layouts per kind
def sd_layout(root: Path, precision: str) -> tuple[dict, tuple, str | None]:
    index = required_json(root, "model_index.json", "sd")
    absent = [c for c in SD_COMPONENTS if not (isinstance(index.get(c), list) and index[c] and index[c][0])]
    if absent:
        raise CheckpointInvalid(f"{root / 'model_index.json'} names no {', '.join(absent)}: it must hold a "
                                f"loadable checkpoint of the right kind ({WHAT_IS_NEEDED['sd']})")
    files = {"model_index.json": root / "model_index.json"}
    libraries = {c: index[c][0] for c in SD_MODELS}
    plain = {c: bool(present(root / c, weight_names(libraries[c], None))) for c in SD_MODELS}
    half = {c: bool(present(root / c, weight_names(libraries[c], HALF_VARIANT))) for c in SD_MODELS}
    # Half precision loads the fp16 files where they exist; full precision does too when a component has nothing else.
    variant = HALF_VARIANT if any(half.values()) and (precision in HALF_PRECISIONS or not all(plain.values())) else None
    weights = []
    for c in SD_MODELS:
        files[f"{c}/config.json"] = root / c / "config.json"
        if not plain[c] and not half[c]:
            names = [n for n in weight_names(libraries[c], None) if not n.endswith(".json")]
            raise CheckpointInvalid(f"{root / c}: no weight file ({' or '.join(names)}, nor their "
                                    f"{HALF_VARIANT} variants)")
        use = variant if variant and half[c] else None
        names = weight_files(root, c, libraries[c], use)
        files.update(names)
        weights += names
    files["scheduler/scheduler_config.json"] = root / "scheduler" / "scheduler_config.json"
    files.update(tokenizer_files(root, "tokenizer", ("tokenizer.json", ("vocab.json", "merges.txt"))))
    return files, tuple(weights), variant


def clip_layout(root: Path, precision: str) -> tuple[dict, tuple, None]:
    config = required_json(root, "config.json", "clip")
    if config.get("model_type") != "clip":
        raise CheckpointInvalid(f"{root / 'config.json'} has model_type {config.get('model_type')!r}, not 'clip': "
                                f"it must hold a loadable checkpoint of the right kind ({WHAT_IS_NEEDED['clip']})")
    files = {"config.json": root / "config.json"}
    weights = weight_files(root, "", "transformers", None)
    files.update(weights)
    files.update(tokenizer_files(root, "", ("tokenizer.json", ("vocab.json", "merges.txt"))))
    return files, tuple(weights), None


def transformers_layout(root: Path, precision: str, kind: str = "captioner") -> tuple[dict, tuple, None]:
    config = required_json(root, "config.json", kind)
    if not config.get("model_type"):
        raise CheckpointInvalid(f"{root / 'config.json'} names no model_type: it must hold a loadable checkpoint of "
                                f"the right kind ({WHAT_IS_NEEDED.get(kind, 'a transformers model')})")
    files = {"config.json": root / "config.json"}
    weights = weight_files(root, "", "transformers", None)
    files.update(weights)
    files.update(tokenizer_files(root, "", ("tokenizer.json", "vocab.txt", ("vocab.json", "merges.txt"))))
    if not os.path.lexists(root / "preprocessor_config.json"):
        raise CheckpointInvalid(f"{root / 'preprocessor_config.json'} is missing (the image processor's settings)")
    files["preprocessor_config.json"] = root / "preprocessor_config.json"
    return files, tuple(weights), None


LAYOUTS = {"sd": sd_layout, "clip": clip_layout, "captioner": transformers_layout}


# ----------------------------------------------------------------------------------------------------- file names
def with_variant(name: str, variant: str | None) -> str:
    """model.safetensors -> model.fp16.safetensors; model.safetensors.index.json -> model.safetensors.index.fp16.json
    (both libraries put the variant before the last suffix)."""
    if not variant:
        return name
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{variant}.{suffix}"


def weight_names(library: str, variant: str | None) -> list[str]:
    """The weight file names a library looks for, in the order dd-bench prefers them: safetensors first."""
    stems = ("diffusion_pytorch_model", "diffusion_pytorch_model") if library == "diffusers" else ("model",
                                                                                                   "pytorch_model")
    names = []
    for stem, suffix in zip(stems, ("safetensors", "bin")):
        names += [with_variant(f"{stem}.{suffix}", variant), with_variant(f"{stem}.{suffix}.index.json", variant)]
    return names


def present(folder: Path, names: list[str]) -> list[str]:
    # lexists: a link whose blob is gone still counts as present, so it is reported rather than passed over
    return [n for n in names if os.path.lexists(folder / n)]


def weight_files(root: Path, sub: str, library: str, variant: str | None) -> dict[str, Path]:
    folder = root / sub if sub else root
    prefix = f"{sub}/" if sub else ""
    names = weight_names(library, variant)
    found = present(folder, names)
    if not found:
        expected = " or ".join(n for n in names if not n.endswith(".json"))
        raise CheckpointInvalid(f"{folder}: no weight file ({expected})")
    chosen = found[0]
    files = {prefix + chosen: folder / chosen}
    if chosen.endswith(".json"):  # a sharded checkpoint: the index names its shards
        index = read_json(folder / chosen)
        shards = sorted(set((index.get("weight_map") or {}).values()))
        if not shards:
            raise CheckpointInvalid(f"{folder / chosen}: a sharded-weights index with an empty weight_map")
        for shard in shards:
            if not os.path.lexists(folder / shard):
                raise CheckpointInvalid(f"{folder / shard}: missing (a shard named by {chosen})")
            files[prefix + shard] = folder / shard
    return files


def tokenizer_files(root: Path, sub: str, needs: tuple) -> dict[str, Path]:
    """Every tokenizer file present; one of `needs` (a file, or a tuple of files that go together) must be."""
    folder = root / sub if sub else root
    prefix = f"{sub}/" if sub else ""
    found = present(folder, list(TOKENIZER_FILES))
    options = [(need,) if isinstance(need, str) else need for need in needs]
    if not any(all(n in found for n in option) for option in options):
        wanted = " or ".join(" + ".join(option) for option in options)
        raise CheckpointInvalid(f"{folder}: no tokenizer files ({wanted})")
    return {prefix + n: folder / n for n in found}


def required_json(root: Path, name: str, kind: str) -> dict:
    path = root / name
    if not os.path.lexists(path):
        raise CheckpointInvalid(f"{root} holds no {name}: it must hold a loadable checkpoint of the right kind "
                                f"({WHAT_IS_NEEDED.get(kind, 'a transformers model with config.json')})")
    return read_json(path)


def read_json(path: Path) -> dict:
    check_file(path, path.name)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointInvalid(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointInvalid(f"{path}: expected a JSON object, found a {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------------------------------- file checks
def check_file(path: Path, name: str) -> None:
    """Raise CheckpointInvalid naming `path` unless it is there, non-empty and its header reads."""
    if not os.path.lexists(path):
        raise CheckpointInvalid(f"{path}: missing")
    if not path.exists():
        raise CheckpointInvalid(f"{path}: a link to {os.readlink(path)}, which is missing (an interrupted "
                                f"download or a cleaned cache: fetch the files again)")
    try:
        if path.stat().st_size == 0:
            raise CheckpointInvalid(f"{path}: empty file")
        if name.endswith(".safetensors"):
            check_safetensors(path)
        elif name.endswith(".bin"):
            check_torch_archive(path)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        else:
            with open(path, "rb") as f:
                f.read(1)
    except CheckpointInvalid:
        raise
    except OSError as e:
        raise CheckpointInvalid(f"{path}: cannot be read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointInvalid(f"{path}: not valid JSON ({e})") from None


def check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # the library raises its own error types for a bad header or a short file
        raise CheckpointInvalid(f"{path}: not a readable safetensors file ({e})") from None


def check_torch_archive(path: Path) -> None:
    """A .bin from torch.save: a zip archive holding data.pkl (or the pre-1.6 format). Nothing is unpickled."""
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_TORCH_MAGIC))
    if head == LEGACY_TORCH_MAGIC:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as e:
        raise CheckpointInvalid(f"{path}: not a PyTorch weights archive, or cut short ({e})") from None
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise CheckpointInvalid(f"{path}: a zip archive without data.pkl, not a PyTorch weights file")
