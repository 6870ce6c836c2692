"""The decoded-image cache on disk: images decoded once, kept as raw uint8 bytes, checked before every reuse.

An entry is two files in the cache folder: `<name>.u8` (every image's (3, h, w) bytes, one after the other) and
`<name>.json` (the shapes, the byte count and a BLAKE2b digest of the bytes), written last, so its presence means
the entry is whole. The bytes are written with plain writes into space reserved up front (a full disk is an OSError
naming the folder, never a SIGBUS of a memory map over a sparse file), under a temporary name unique to the writer
(host, pid, a random token), then renamed. A reused entry is opened read-only and checked against its record (size
always; the digest once per process); one that does not match is reported, removed and made again.

The folder is bounded: before an entry is written, the least recently used entries are removed until it fits under
the limit; an entry that cannot fit at all (or does not fit the free disk) is not cached, and the caller decodes
images as it needs them. Temporary files of writers that died on this host are removed when the folder is opened.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

log = logging.getLogger("dd_bench")

FORMAT = "dd-bench decoded images v2"
HEADROOM = 1 << 30  # bytes left free on the disk when deciding whether an entry fits
_TMP = re.compile(r"\.tmp-(?:(?P<host>[A-Za-z0-9_.-]+)-)?(?P<pid>\d+)(?:-[0-9a-f]+)?(?:\.npy)?$")
_VERIFIED: set[tuple[str, int, int]] = set()  # (data file, size, mtime_ns) whose digest this process checked


@dataclass
class Entry:
    """A whole, checked entry: its bytes read-only, and where each image starts."""

    data: np.ndarray  # uint8, read-only memory map (or empty)
    shapes: list[tuple[int, int]]  # (h, w) of each image
    offsets: list[int]
    nbytes: int
    note: str = ""  # what happened on open: "reused", "made", or why it was made again


def image_bytes(shapes: Iterable[tuple[int, int]]) -> int:
    return sum(3 * h * w for h, w in shapes)


def offsets_of(shapes: list[tuple[int, int]]) -> list[int]:
    out, at = [], 0
    for h, w in shapes:
        out.append(at)
        at += 3 * h * w
    return out


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of writers on this host that are no longer running; returns what was removed.
    Names without a host (an older layout) count as this host's."""
    removed = []
    host = _host()
    for path in folder.iterdir() if folder.is_dir() else ():
        m = _TMP.search(path.name)
        if m is None or (m.group("host") not in (None, host)):
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            path.unlink()
            removed.append(path)
            log.warning("removed %s, left by a writer that died (pid %d)", path, pid)
        except FileNotFoundError:
            pass
    return removed


def remove_old_format(folder: Path) -> None:
    """Remove entries of the first format (square .npy arrays with a .done marker, never checked): nothing reads
    them any more, and they would hold disk outside the bound."""
    for path in [*folder.glob("images-*.npy"), *folder.glob("images-*.done")]:
        if _TMP.search(path.name) is None:
            path.unlink(missing_ok=True)
            log.info("decoded-image cache: removed %s (an older format)", path)


def _digest_file(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _remove(stem: Path) -> None:
    for suffix in (".json", ".u8"):
        stem.with_suffix(suffix).unlink(missing_ok=True)


class Cache:
    """One folder of entries, at most `limit` bytes in all (None: no limit but the disk)."""

    def __init__(self, folder: Path, limit: int | None):
        self.folder = Path(folder)
        self.limit = limit
        self.problem = ""  # why the last entry opened did not match its record (it was removed)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.folder)
        remove_old_format(self.folder)

    def _stem(self, name: str) -> Path:
        return self.folder / name

    def open(self, name: str) -> Entry | None:
        """The entry called name, checked; None when there is none, or when it did not match its record (then it is
        removed and the reason logged, so the caller makes it again)."""
        stem = self._stem(name)
        record_path, data_path = stem.with_suffix(".json"), stem.with_suffix(".u8")
        self.problem = ""
        if not record_path.exists():
            return None
        problem = self._check(record_path, data_path)
        if problem:
            log.warning("decoded-image cache %s %s: made again", data_path, problem)
            _remove(stem)
            self.problem = f"{data_path.name} {problem}"
            return None
        record = json.loads(record_path.read_text())
        os.utime(record_path)  # last use, for eviction
        shapes = [tuple(s) for s in record["shapes"]]
        data = np.memmap(data_path, dtype=np.uint8, mode="r") if record["bytes"] else np.zeros(0, np.uint8)
        return Entry(data, shapes, offsets_of(shapes), record["bytes"], note="reused")

    def _check(self, record_path: Path, data_path: Path) -> str:
        try:
            record = json.loads(record_path.read_text())
            if record.get("format") != FORMAT:
                return f"has format {record.get('format')!r}, not {FORMAT!r}"
            st = data_path.stat()
        except FileNotFoundError:
            return "has a record but no data file"
        except (OSError, ValueError) as e:
            return f"record cannot be read ({type(e).__name__}: {e})"
        if st.st_size != record["bytes"] or image_bytes(record["shapes"]) != record["bytes"]:
            return f"is {st.st_size} bytes, its record says {record['bytes']}"
        key = (str(data_path), st.st_size, st.st_mtime_ns)
        if key not in _VERIFIED:
            if _digest_file(data_path) != record["digest"]:
                return "does not match the digest recorded when it was written"
            _VERIFIED.add(key)
        return ""

    def make_room(self, need: int) -> bool:
        """Remove least recently used entries until `need` more bytes fit under the limit and on the disk; False
        (nothing removed) when they cannot fit even in an empty folder."""
        free = shutil.disk_usage(self.folder).free
        entries = []
        for record in self.folder.glob("*.json"):
            data = record.with_suffix(".u8")
            try:
                entries.append((record.stat().st_mtime, data.stat().st_size if data.exists() else 0, record))
            except FileNotFoundError:
                continue
        used = sum(size for _, size, _ in entries)
        if (self.limit is not None and need > self.limit) or need + HEADROOM > free + used:
            return False
        for _, size, record in sorted(entries):
            if (self.limit is None or used + need <= self.limit) and need + HEADROOM <= free:
                break
            _remove(record.with_suffix(""))
            used -= size
            free += size
            log.info("decoded-image cache: removed %s (least recently used) to make room", record.with_suffix(".u8"))
        return (self.limit is None or used + need <= self.limit) and need + HEADROOM <= free

    def write(self, name: str, shapes: list[tuple[int, int]], images: Iterable[np.ndarray],
              what: Callable[[], str] = lambda: "images") -> Entry:
        """Write an entry from the images (in order, each (3, h, w) uint8 of its shape) and return it opened."""
        stem = self._stem(name)
        nbytes = image_bytes(shapes)
        tmp = stem.with_name(f"{stem.name}.u8.tmp-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")
        digest = hashlib.blake2b(digest_size=16)
        try:
            with open(tmp, "wb") as f:
                if nbytes:
                    try:
                        os.posix_fallocate(f.fileno(), 0, nbytes)
                    except OSError as e:
                        if e.errno != errno.EOPNOTSUPP and e.errno != errno.EINVAL:
                            raise
                for (h, w), image in zip(shapes, images, strict=True):
                    if image.shape != (3, h, w) or image.dtype != np.uint8:
                        raise ValueError(f"image of shape {image.shape} {image.dtype}, expected (3, {h}, {w}) uint8")
                    block = np.ascontiguousarray(image).tobytes()
                    digest.update(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, stem.with_suffix(".u8"))
            record = {"format": FORMAT, "what": what(), "bytes": nbytes, "shapes": [list(s) for s in shapes],
                      "digest": digest.hexdigest()}
            record_tmp = stem.with_name(f"{stem.name}.json.tmp-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")
            record_tmp.write_text(json.dumps(record))
            os.replace(record_tmp, stem.with_suffix(".json"))
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OSError(e.errno, f"no space left in {self.folder} for the decoded-image cache "
                                       f"({nbytes / 1e9:.2f} GB needed): free space in the work dir, or lower "
                                       f"classifier.cache_max_gb so that such sets are decoded as needed") from None
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        st = stem.with_suffix(".u8").stat()
        _VERIFIED.add((str(stem.with_suffix(".u8")), st.st_size, st.st_mtime_ns))
        data = np.memmap(stem.with_suffix(".u8"), dtype=np.uint8, mode="r") if nbytes else np.zeros(0, np.uint8)
        return Entry(data, list(shapes), offsets_of(shapes), nbytes, note="made")
