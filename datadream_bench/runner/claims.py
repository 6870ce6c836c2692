"""Claims: one writer per artifact, across threads, processes and hosts that share a work dir.

A claim is a small file beside the artifact, created atomically with os.link (atomic on local filesystems and on
NFS, where O_EXCL has not always been), holding its owner's host, pid, start time and a random token. Whoever holds
the claim makes the artifact; everyone else waits, or does other work first, and then reuses it.

A claim is stale when its owner is a dead pid on this host, or when its heartbeat (the file's mtime, refreshed
every HEARTBEAT_S by the owner) is older than STALE_AFTER_S: an owner on another host that died. A stale claim is
broken under a second, short-lived lock, so two waiters never both break it and then both work.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..artifacts import HOST, pid_alive, temp_path

log = logging.getLogger("dd_bench")

HEARTBEAT_S = 20.0
STALE_AFTER_S = 120.0  # six missed heartbeats
BREAK_LOCK_STALE_S = 30.0  # breaking takes microseconds: a break lock this old belongs to a dead process
POLL_S = 0.5


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    token: str
    started: float
    what: str = ""

    def describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host} since {since}"


class _Held:
    """The claims this process holds, refreshed by one heartbeat thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.claims: dict[str, Path] = {}  # token -> claim file
        self.thread: threading.Thread | None = None

    def add(self, claim: "Claim") -> None:
        with self.lock:
            self.claims[claim.owner.token] = claim.path
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="dd-bench-claims", daemon=True)
                self.thread.start()

    def remove(self, claim: "Claim") -> None:
        with self.lock:
            self.claims.pop(claim.owner.token, None)

    def holds(self, token: str) -> bool:
        with self.lock:
            return token in self.claims

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.lock:
                held = list(self.claims.items())
            for token, path in held:
                owner = read_owner(path)
                if owner is None or owner.token != token:
                    log.warning("the claim %s was taken over (this process was taken for dead); the artifact is "
                                "written atomically either way", path)
                    continue
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass


_HELD = _Held()


class Claim:
    """A held claim; release() (or leaving the with block) gives it up."""

    def __init__(self, path: Path, owner: Owner):
        self.path, self.owner = path, owner

    def release(self) -> None:
        _HELD.remove(self)
        current = read_owner(self.path)
        if current is not None and current.token == self.owner.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_owner(path: Path) -> Owner | None:
    try:
        data = json.loads(path.read_text())
        return Owner(data["host"], int(data["pid"]), data["token"], float(data["started"]), data.get("what", ""))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # Unreadable: not written by a claim (links publish complete files); treated like one of unknown owner.
        return Owner("?", -1, "?", 0.0)


def try_claim(path: str | Path, what: str = "") -> Claim | None:
    """The claim on `path` if nobody holds it (a stale one is broken first), else None."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = Owner(HOST, os.getpid(), os.urandom(8).hex(), time.time(), what)
    tmp = temp_path(path)
    tmp.write_text(json.dumps(owner.__dict__))
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)
            except FileExistsError:
                current = read_owner(path)
                if current is not None and is_stale(path, current) and _break(path, current):
                    continue
                return None
            claim = Claim(path, owner)
            _HELD.add(claim)
            return claim
        return None
    finally:
        tmp.unlink(missing_ok=True)


def is_stale(path: Path, owner: Owner) -> bool:
    if owner.host == HOST and owner.pid == os.getpid():
        return not _HELD.holds(owner.token)  # left by an earlier process that had this pid
    if owner.host == HOST and owner.pid > 0 and not pid_alive(owner.pid):
        return True
    try:
        return time.time() - path.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def _break(path: Path, judged: Owner) -> bool:
    """Remove a claim judged stale, unless someone else is breaking it or it changed hands meanwhile."""
    lock = path.with_name(path.name + ".break")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime > BREAK_LOCK_STALE_S:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        current = read_owner(path)
        if current is None or current.token != judged.token:
            return current is None
        log.warning("taking over %s from %s, which is gone", path, judged.describe())
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def claim_or_wait(path: str | Path, done: Callable[[], bool], what: str = "",
                  poll_s: float = POLL_S) -> Claim | None:
    """Wait until the artifact is done (None: reuse it) or its claim is ours (the Claim: make it).

    done() is asked again once the claim is held, since the previous owner may have finished it meanwhile.
    """
    path = Path(path)
    told = False
    while True:
        if done():
            return None
        claim = try_claim(path, what)
        if claim is not None:
            if done():
                claim.release()
                return None
            return claim
        if not told:
            owner = read_owner(path)
            if owner is not None:
                log.info("waiting for %s: %s is making it", what or path, owner.describe())
            told = True
        time.sleep(poll_s)
