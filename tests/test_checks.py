"""The request checks that depend on the machine: devices that exist, a work dir that can be written."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile

import pytest
import torch

from datadream_bench.checks import check_device, check_work_dir
from datadream_bench.errors import UsageError


def test_cpu_is_always_a_device():
    check_device("cpu")
    check_device(None)  # not given: the runner picks cuda when there is one, else cpu


def test_a_cuda_index_past_the_last_gpu_is_refused_with_the_valid_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda")
    check_device("cuda:1")
    with pytest.raises(UsageError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\); expected cuda or "
                                         r"cuda:0 to cuda:1"):
        check_device("cuda:2")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA machine")
def test_on_a_gpu_machine_the_real_count_bounds_the_index():
    count = torch.cuda.device_count()
    check_device(f"cuda:{count - 1}")
    with pytest.raises(UsageError, match=f"has {count} CUDA device"):
        check_device(f"cuda:{count}")


def read_only_folder(tmp_path):
    """A folder no one can write to: a read-only tmpfs when root can mount one (root ignores file modes), else a
    folder without write permission. None where neither is possible."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return folder
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True)
    return folder if mounted.returncode == 0 else None


def test_a_read_only_work_dir_is_a_usage_error_up_front(tmp_path, monkeypatch):
    folder = read_only_folder(tmp_path)
    simulated = folder is None
    try:
        if simulated:
            # No way to make a read-only folder here: the write fails as a read-only filesystem makes it fail.
            print("mounting is not permitted here: a read-only filesystem is simulated (EROFS on write)")
            folder = tmp_path / "ro"

            def refuse(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))

            monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
        with pytest.raises(UsageError, match=f"--work-dir {folder}: cannot be written to .*expected a folder you "
                                             "can write to"):
            check_work_dir(folder)
        if not simulated:
            with pytest.raises(UsageError, match="cannot be created"):
                check_work_dir(folder / "below")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(tmp_path / "ro")], capture_output=True)


def test_a_cluster_run_may_name_a_gpu_the_driver_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA is not available"):
        check_device("cuda")
    check_device("cuda", here=False)  # the cells run on the cluster's GPU workers
    check_device("cuda:3", here=False)
    with pytest.raises(UsageError, match="not a device name"):
        check_device("bogus", here=False)
    with pytest.raises(UsageError, match="does not run on"):
        check_device("meta", here=False)
