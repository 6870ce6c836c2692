"""The executor seam: a cell travels as its spec and is rebuilt anywhere; Ray is optional; paths stored in the
work dir survive a copy of it and another current directory."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datadream_bench.errors import UsageError
from datadream_bench.plugins import load_registry
from datadream_bench.runner import run_grid
from datadream_bench.runner.executor import LocalExecutor, make_executor
from datadream_bench.store import ResultsStore
from datadream_bench.testing import tiny_cells


def test_ray_is_optional_and_says_how_to_install_it(monkeypatch):
    assert isinstance(make_executor("local"), LocalExecutor)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(UsageError, match=r'pip install "dd-bench\[ray\]"'):
        make_executor("ray")
    with pytest.raises(UsageError, match="go with --executor ray"):
        make_executor("local", shard_images=2)
    with pytest.raises(UsageError, match="unknown executor 'slurm'"):
        make_executor("slurm")


def test_a_cell_rebuilt_from_its_spec_in_a_fresh_interpreter_gives_the_same_row(tmp_path):
    work = tmp_path / "work"
    cell = tiny_cells(["real-only"], work, load_registry())[0]
    assert run_grid([cell], work).outcomes[0].status == "done"
    expected = ResultsStore(work / "results.sqlite").record(cell.spec.key())
    spec_json = cell.spec.model_dump_json()
    assert len(spec_json) < 10_000  # the spec, not the dataset: it names what to read, by path and fingerprint
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent("""
        import json, sys
        from datadream_bench.runner.build import build_cell
        from datadream_bench.runner.cell import compute_cell
        from datadream_bench.runner.events import Reporter
        from datadream_bench.runner.workdir import WorkDir
        from datadream_bench.spec import CellSpec
        spec = CellSpec.model_validate_json(sys.stdin.read())
        outcome, record = compute_cell(build_cell(spec), WorkDir(spec.work_dir), Reporter())
        print(json.dumps({"metrics": record["metrics"], "artifacts": record["artifacts"], "reused": record["reused"]}))
    """)
    # another current directory, and a process that shares nothing with this one
    result = subprocess.run([sys.executable, "-c", script], input=spec_json, capture_output=True, text=True,
                            cwd=elsewhere, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.splitlines()[-1])
    assert got["metrics"] == expected["metrics"] and got["artifacts"] == expected["artifacts"]
    assert got["reused"]["classifier"] is True  # it found the first run's artifacts through the spec's work dir


def test_a_copied_work_dir_still_finds_its_shots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cell = tiny_cells(["zero-shot-clip"], "relative-work", load_registry())[0]  # the default style: relative -w
    assert run_grid([cell], "relative-work").outcomes[0].status == "done"
    shots = [Path(s.path).read_bytes() for s in cell.fewshot.samples]
    shutil.copytree(tmp_path / "relative-work", tmp_path / "copy")
    shutil.rmtree(tmp_path / "relative-work")
    monkeypatch.chdir("/")  # and another current directory
    (saved,) = (tmp_path / "copy" / "fewshot").rglob("*.json")
    data = json.loads(saved.read_text())
    assert data["paths_relative_to"] == "work_dir"
    paths = [p for group in data["shots"] for p in group]
    assert [(tmp_path / "copy" / p).read_bytes() for p in paths] == shots
    # and a saved draw can be imported back as a few-shot set (its files resolved against its work dir)
    assert _listed_paths(saved) == [str(tmp_path / "copy" / p) for p in paths]


def _listed_paths(saved):
    from datadream_bench.datasets.fewshot import _listed

    return [str(p) for p, _ in _listed(None, saved, [])]
