"""Artifacts: unique temporary names, atomic writes, size and digest checked before reuse."""

import os
import subprocess
import sys

import pytest

from datadream_bench import artifacts
from datadream_bench.artifacts import CorruptArtifact, check_file, read_record, temp_path, write_record


def test_every_writer_gets_its_own_temporary_name(tmp_path):
    target = tmp_path / "x.png"
    names = {temp_path(target).name for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(f"x.png.tmp-{artifacts.HOST}-{os.getpid()}-") for n in names)
    assert all(artifacts.is_temp(tmp_path / n) for n in names) and not artifacts.is_temp(target)


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="disk full"):
        artifacts.write_with(tmp_path / "state.safetensors", broken)
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_temporary_files_of_dead_writers_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = tmp_path / f"a.png.tmp-{artifacts.HOST}-{os.getpid()}-0123abcd"
    gone = tmp_path / f"b.png.tmp-{artifacts.HOST}-{dead_pid}-0123abcd"
    foreign = tmp_path / "c.png.tmp-otherhost-1-0123abcd"
    kept = tmp_path / "d.png"
    for p in (mine, gone, foreign, kept):
        p.write_bytes(b"x")
    assert artifacts.sweep_temps(tmp_path) == [gone]
    os.utime(foreign, (0, 0))  # another host's file, untouched for decades: abandoned
    assert artifacts.sweep_temps(tmp_path) == [foreign]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, kept.name])


def test_check_file_finds_truncation_and_altered_bytes(tmp_path):
    f = tmp_path / "lora.safetensors"
    recorded = artifacts.write_bytes_atomic(f, b"0123456789" * 100)
    assert check_file(f, recorded) is None
    f.write_bytes(b"0123456789" * 50)
    assert "500 bytes, 1000 recorded" in check_file(f, recorded)
    f.write_bytes(b"0123456789" * 99 + b"012345678X")
    assert "does not match the recorded SHA-256" in check_file(f, recorded)
    f.unlink()
    assert check_file(f, recorded) == "missing"
    assert "no size and digest recorded" in check_file(f, None)


def test_a_record_checks_itself(tmp_path):
    path = tmp_path / "train.json"
    write_record(path, {"epochs": 3, "best": {"val_top1": 41.5}})
    assert read_record(path) == {"epochs": 3, "best": {"val_top1": 41.5}}
    text = path.read_text()
    path.write_text(text.replace("41.5", "91.5"))  # still valid JSON, different content
    with pytest.raises(CorruptArtifact, match="does not match its recorded SHA-256"):
        read_record(path)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptArtifact, match="not valid JSON"):
        read_record(path)
    path.write_text('{"epochs": 3}')  # a record from before digests were kept
    with pytest.raises(CorruptArtifact, match="no digest recorded"):
        read_record(path)
