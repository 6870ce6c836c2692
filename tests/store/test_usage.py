"""`dd-bench du`: every byte of a work dir counted once, per kind of artifact and method, and the artifacts no
result uses told apart from those in use and those a run holds a claim on."""

import json
import os
import shutil

from typer.testing import CliRunner

from datadream_bench.cli.main import app
from datadream_bench.testing import run_tiny


def du(*args):
    return CliRunner().invoke(app, ["du", *args])


def test_du_counts_every_byte_once_and_finds_what_no_result_uses(tmp_path):
    work = tmp_path / "work"
    outcome = run_tiny(["zero-shot-sd", "real-only"], work)
    assert not outcome.failed
    (used_set,) = (work / "generated" / "zero-shot-sd").iterdir()
    orphan = used_set.parent / "00000000deadbeef"  # a set of settings no run asks for any more
    shutil.copytree(used_set, orphan)
    busy = used_set.parent / "00000000cafef00d"  # a set another run is making
    shutil.copytree(used_set, busy)
    (busy / "blocks").mkdir(exist_ok=True)
    (busy / "blocks" / "00000000.claim").write_text("{}")

    result = du("-w", str(work), "--json")
    assert result.exit_code == 0, result.output
    arts = json.loads(result.stdout)["artifacts"]
    on_disk = sum(os.lstat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(work) for f in fs)
    assert sum(a["bytes"] for a in arts) == on_disk  # nothing missed, nothing counted twice
    sets = {a["key"]: a for a in arts if a["kind"] == "generate"}
    assert sets[used_set.name]["used_by"] == 2  # both settings of zero-shot SD train on it
    assert sets[orphan.name]["used_by"] == 0 and sets[busy.name]["claimed"]
    assert {a["kind"] for a in arts} >= {"generate", "classifier", "fewshot", "shared"}

    listed = du("-w", str(work), "--unused")
    assert listed.exit_code == 0 and listed.stdout.split() == [str(orphan)]  # the claimed set is not offered
    assert "1 artifact(s)" in listed.stderr and "used by none of the 3 result(s)" in listed.stderr

    table = du("-w", str(work))
    assert table.exit_code == 0 and "zero-shot-sd" in table.stdout and "total" in table.stdout
    assert du("-w", str(tmp_path / "nowhere")).exit_code == 2
