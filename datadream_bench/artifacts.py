"""Writing and reusing artifacts safely: unique temporary names, atomic renames, size and digest on every file.

Several processes (two `dd-bench run`s, or an executor's workers on other hosts) may write into one work dir. A
temporary name carries host, pid and a random token, so two writers never share one; the rename that publishes a
file is atomic. Every artifact is recorded with its size and SHA-256, and checked against them before it is reused:
a truncated or altered file is reported with its path and made again, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path

from .fingerprint import canonical_json, file_digest

log = logging.getLogger("dd_bench")

HOST = socket.gethostname()
_TEMP = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")
# A temporary file of another host is only taken for abandoned after this long (its writer may still be at work).
FOREIGN_TEMP_AGE_S = 24 * 3600


class CorruptArtifact(Exception):
    """An artifact on disk does not match what was recorded when it was written."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def temp_path(path: str | Path) -> Path:
    """A temporary name beside `path` that no other writer (thread, process or host) can pick."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def is_temp(path: Path) -> bool:
    return _TEMP.search(path.name) is not None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files in `folder` whose writer is gone (a dead pid on this host, or older than a day
    elsewhere); returns what was removed. Temporary files of live writers are left alone."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.iterdir():
        m = _TEMP.search(p.name)
        if m is None:
            continue
        mine = m["host"] == HOST
        try:
            abandoned = not pid_alive(int(m["pid"])) if mine else now - p.stat().st_mtime > FOREIGN_TEMP_AGE_S
            if abandoned:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue
    return removed


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file into place (atomic within one filesystem)."""
    os.replace(tmp, path)


def named(error: BaseException, path: Path) -> BaseException:
    """An OSError of a write that does not say which file (a full disk on f.write) is given the file's name, so the
    one line a user sees names it; any other error is left as it is."""
    if isinstance(error, OSError) and error.filename is None and error.errno is not None:
        renamed = OSError(error.errno, error.strerror, str(path))
        renamed.__cause__ = error
        return renamed
    return error


def write_bytes_atomic(path: str | Path, data: bytes, sync: bool = False) -> dict:
    """Write data under a unique temporary name and rename it into place. Returns its size and digest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_with(path: str | Path, writer) -> dict:
    """Let writer(tmp_path) write the file under a unique temporary name, then rename it into place. Returns the
    size and digest of what was written (for libraries that write to a path themselves, e.g. safetensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        writer(tmp)
        digest = describe_file(tmp)
        publish(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path)
    return digest


def write_json_atomic(path: str | Path, obj) -> dict:
    return write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def describe_file(path: str | Path) -> dict:
    path = Path(path)
    return {"size": path.stat().st_size, "sha256": file_digest(path)}


def check_file(path: str | Path, recorded: dict | None) -> str | None:
    """None if the file is there with the recorded size and digest, else what is wrong with it."""
    path = Path(path)
    if not recorded or "sha256" not in recorded or "size" not in recorded:
        return "no size and digest recorded for it (written by an older dd-bench)"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size != recorded["size"]:
        return f"{size} bytes, {recorded['size']} recorded (truncated or overwritten)"
    if file_digest(path) != recorded["sha256"]:
        return "its content does not match the recorded SHA-256 (corrupted)"
    return None


def write_record(path: str | Path, obj: dict) -> dict:
    """A JSON record that checks itself: its SHA-256 is stored inside, so truncation or a flipped byte is found."""
    body = canonical_json(obj)
    text = json.dumps({"record": obj, "sha256": hashlib.sha256(body.encode()).hexdigest()}, indent=1,
                      sort_keys=True)
    return write_bytes_atomic(path, text.encode())


def read_record(path: str | Path) -> dict:
    """The record written by write_record; CorruptArtifact when it was cut, altered or written without a digest."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptArtifact(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict) or set(data) != {"record", "sha256"}:
        raise CorruptArtifact(path, "no digest recorded in it (written by an older dd-bench, or altered)")
    if hashlib.sha256(canonical_json(data["record"]).encode()).hexdigest() != data["sha256"]:
        raise CorruptArtifact(path, "its content does not match its recorded SHA-256 (corrupted)")
    return data["record"]


def report_corrupt(error: CorruptArtifact, action: str = "made again") -> None:
    log.warning("corrupted artifact %s: %s; %s", error.path, error.reason, action)


class CorruptReports:
    """Reports each damaged artifact once, however often a stage that waits on it looks at it again."""

    def __init__(self, action: str = "made again"):
        self.action, self.seen = action, set()

    def __call__(self, error: CorruptArtifact) -> None:
        if str(error) not in self.seen:
            self.seen.add(str(error))
            report_corrupt(error, self.action)
