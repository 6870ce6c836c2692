"""Named points where a test can kill this process, or make its disk full, to show what a rerun does after it.

    DD_BENCH_KILL_AT=generate.batch:3 dd-bench run ...

kills the run with SIGKILL (no cleanup, no flush, as a power cut or the OOM killer would) the 3rd time it reaches
`faults.point("generate.batch")`; DD_BENCH_FULL_AT=generate.write:3 raises the OSError (ENOSPC) a full disk raises
there instead, for machines where a test cannot mount a small filesystem. Without the variables a point costs one
comparison. The stages call points at their boundaries; POINTS lists every name.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

ENV = "DD_BENCH_KILL_AT"
FULL_ENV = "DD_BENCH_FULL_AT"

# Every point, where it is, and what the work dir holds when the process dies there.
POINTS = {
    "fewshot.draw": "a cell starts: nothing of it on disk yet",
    "fewshot.saved": "the few-shot draw is saved, nothing else of the cell",
    "adapt.unit": "an adapt unit (a class's LoRA, a class's captions) is about to be made",
    "adapt.saved": "an adapt unit's LoRA is on disk, its record (which marks it finished) is not",
    "generate.batch": "a batch is sampled, none of its files written",
    "generate.write": "an image's temporary file is written, not yet renamed into place",
    "generate.recorded": "a batch's files and manifest lines are written",
    "filter.judged": "the filter judged a batch, its rejections are not logged yet",
    "train.start": "the classifier is about to train (the generated set is complete)",
    "train.step": "a classifier training step is done, nothing of the training saved",
    "train.saved": "the classifier state is on disk, its train.json (which marks it finished) is not",
    "evaluate.start": "the classifier is trained and saved, evaluation is about to run",
    "store.write": "the cell's row is written inside an open SQLite transaction, not committed",
    "store.written": "the cell's row is committed",
}


def _target(env: str) -> tuple[str, int] | None:
    value = os.environ.get(env)
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in POINTS:
        raise ValueError(f"{env}={value}: unknown point {name!r}; points: {', '.join(POINTS)}")
    return name, int(count or 1)


_KILL: tuple[str, int] | None = None
_FULL: tuple[str, int] | None = None
_seen: dict[str, int] = {}


def arm() -> None:
    """Read the variables again and start counting visits afresh (done at import; a process forked from a warm
    parent to run the CLI calls it after setting them)."""
    global _KILL, _FULL
    _KILL, _FULL = _target(ENV), _target(FULL_ENV)
    _seen.clear()


arm()


def point(name: str) -> None:
    """Die here if DD_BENCH_KILL_AT names this point and this is its n-th visit; raise ENOSPC from its n-th visit on
    (the disk stays full) if DD_BENCH_FULL_AT names it."""
    if _KILL is None and _FULL is None:
        return
    for target in (_KILL, _FULL):
        if target is None or target[0] != name:
            continue
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] < target[1]:
            return
        if target is _FULL:
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (made by {FULL_ENV}={name}:{target[1]})")
        if _seen[name] == target[1]:
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
