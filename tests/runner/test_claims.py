"""Claims: one maker per artifact across processes; a dead owner's claim is taken over, a live one's never."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

from datadream_bench import artifacts
from datadream_bench.runner import claims
from datadream_bench.runner.claims import claim_or_wait, read_owner, try_claim


def test_a_claim_is_held_by_one_owner_until_released(tmp_path):
    path = tmp_path / "unit.claim"
    first = try_claim(path, what="unit 0")
    assert first is not None
    owner = read_owner(path)
    assert (owner.host, owner.pid, owner.what) == (artifacts.HOST, os.getpid(), "unit 0")
    assert try_claim(path) is None  # a second claimant in this process is refused too
    first.release()
    assert not path.exists()
    second = try_claim(path)
    assert second is not None
    second.release()


def test_only_one_of_many_processes_gets_a_claim(tmp_path):
    # Four processes race for one claim at about the same moment: exactly one wins. Each holds on (the winner keeps
    # its claim) until every one has answered, so a late starter never meets a finished winner's stale claim.
    script = textwrap.dedent(f"""
        import sys, time
        from datadream_bench.runner.claims import try_claim
        while time.time() < {time.time() + 3}:
            pass
        c = try_claim(__import__("pathlib").Path(sys.argv[1]))
        print("won" if c else "lost", flush=True)
        sys.stdin.read()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "set.claim")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = sorted(p.stdout.readline().strip() for p in procs)
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)
    assert outcomes == ["lost"] * 3 + ["won"]


def test_the_claim_of_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "unit.claim"
    script = "import sys, os; from datadream_bench.runner.claims import try_claim; " \
             "from pathlib import Path; assert try_claim(Path(sys.argv[1])); os._exit(0)"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert read_owner(path) is not None and read_owner(path).pid != os.getpid()  # left behind by a killed owner
    claim = try_claim(path)
    assert claim is not None and read_owner(path).token == claim.owner.token
    claim.release()


def test_another_hosts_claim_is_stale_only_without_heartbeat(tmp_path, monkeypatch):
    path = tmp_path / "unit.claim"
    path.write_text(json.dumps({"host": "node-7", "pid": 1, "token": "abc", "started": time.time()}))
    assert try_claim(path) is None  # fresh: node-7 may be at work
    old = time.time() - claims.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    claim = try_claim(path)
    assert claim is not None
    claim.release()


def test_the_heartbeat_keeps_a_long_claim_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(claims, "_HELD", claims._Held())
    claim = try_claim(tmp_path / "long.claim")
    old = time.time() - 1000
    os.utime(claim.path, (old, old))
    time.sleep(0.5)
    assert time.time() - claim.path.stat().st_mtime < 5
    claim.release()


def test_claim_or_wait_returns_once_the_owner_has_finished(tmp_path):
    path, artifact = tmp_path / "a.claim", tmp_path / "a.bin"
    held = try_claim(path)

    def finish():
        time.sleep(0.5)
        artifact.write_bytes(b"done")
        held.release()

    threading.Thread(target=finish).start()
    start = time.perf_counter()
    assert claim_or_wait(path, artifact.exists, poll_s=0.05) is None  # done by the owner: nothing to make
    assert time.perf_counter() - start >= 0.4


def test_claim_or_wait_makes_it_when_the_owner_gave_up(tmp_path):
    path = tmp_path / "a.claim"
    held = try_claim(path)
    threading.Timer(0.3, held.release).start()  # released without making the artifact (a failed cell)
    claim = claim_or_wait(path, lambda: False, poll_s=0.05)
    assert claim is not None
    claim.release()
