"""Every bad value the command line can be given is a usage error: exit 2, one line that names the value and says
what is expected, found before any model loads, and never a traceback.

Each case's output is printed, so that `pytest -s tests/cli/test_bad_input.py | grep -c Traceback` can be run over
the whole table (it prints 0).
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from datadream_bench.cli.main import app

# (what, arguments after `run`, text the error line must hold). {tmp} is a scratch folder, {file} a file in it.
# Options a case does not give get these values: a cheap, valid run of one cell.
BASE = {"-m": "zero-shot-sd", "--profile": "tiny", "--seeds": "0", "-w": "{tmp}/work"}
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
CASES = [
    # names, with rich markup in them: printed as written, never read as markup
    ("method with markup", ["-m", "[bold]x"], "'[bold]x'"),
    ("method with a closing tag", ["-m", "[/bold]x"], "'[/bold]x'"),
    ("method with an emoji code", ["-m", ":smile:"], "':smile:'"),
    ("empty method list", ["-m", ""], "--method ''"),
    ("unknown method", ["-m", "datadream-clz"], "'datadream-clz'"),
    ("dataset with markup", ["--dataset", "[/red]"], "'[/red]'"),
    ("empty dataset list", ["--dataset", ","], "--dataset ','"),
    ("classifier with markup", ["--classifier", "[/x]"], "'[/x]'"),
    ("profile with markup", ["--profile", "[/x]"], "'[/x]'"),
    ("setting unknown", ["--setting", "synthetic+fake"], "synthetic+fake"),
    ("empty setting list", ["--setting", ""], "--setting ''"),
    # devices
    pytest.param("cuda without CUDA", ["--device", "cuda"], "--device cuda",
                 marks=pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")),
    ("cuda index that does not exist", ["--device", "cuda:7"], "--device cuda:7"),
    pytest.param("mps without MPS", ["--device", "mps"], "--device mps",
                 marks=pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")),
    ("device name that is no device", ["--device", "bogus"], "'bogus'"),
    ("device kind dd-bench does not run on", ["--device", "meta"], "--device meta"),
    ("negative device index", ["--device", "cuda:-1"], "'cuda:-1'"),
    # work dir
    ("work dir is a file", ["-w", "{file}"], "is a file"),
    ("work dir under a file", ["-w", "{file}/sub"], "cannot be created"),
    # batch size
    ("batch size 0", ["--batch-size", "0"], "--batch-size 0"),
    ("batch size -1", ["--batch-size", "-1"], "--batch-size -1"),
    ("batch size not a number", ["--batch-size", "abc"], "--batch-size"),
    ("batch size with markup", ["--batch-size", "[/x]"], "--batch-size"),
    # seeds and shots
    ("empty seeds", ["--seeds", ""], "--seeds ''"),
    ("seeds of commas only", ["--seeds", ",,"], "--seeds ',,'"),
    ("seed 2**63", ["--seeds", str(2**63)], str(2**63)),
    ("seed far past 64 bits", ["--seeds", "1" + "0" * 30], "1" + "0" * 30),
    ("negative seed", ["--seeds", "-1"], "--seeds -1"),
    ("seed not whole", ["--seeds", "1.5"], "'1.5'"),
    ("seed not a number", ["--seeds", "a,b"], "'a,b'"),
    ("shots 0", ["--shots", "0"], "--shots 0"),
    ("negative shots", ["--shots", "-2"], "--shots -2"),
    ("empty shots", ["--shots", ""], "--shots ''"),
    ("more shots than the data has", ["--shots", "100000"], "100000"),
    # numeric settings: finite and in range, as each typed config says
    ("infinite method setting", ["--set", "guidance_scale=inf"], "guidance_scale"),
    ("NaN method setting", ["--set", "guidance_scale=nan"], "guidance_scale"),
    ("infinite LoRA learning rate", ["-m", "datadream-cls", "--set", "lr=inf"], "lr"),
    ("overflowing learning rate", ["-m", "datadream-cls", "--set", "lr=1e999"], "lr"),
    ("infinite classifier setting", ["--set", "classifier.lr=inf"], "lr"),
    ("negative infinite classifier setting", ["--set", "classifier.weight_decay=-inf"], "weight_decay"),
    ("absurd sampling step count", ["--set", "num_inference_steps=100000000000"], "num_inference_steps"),
    ("absurd image count", ["--set", "images_per_class=100000000000"], "images_per_class"),
    ("absurd LoRA epochs", ["-m", "datadream-cls", "--set", "epochs=100000000000"], "epochs"),
    ("absurd classifier epochs", ["--set", "classifier.epochs=100000000000"], "epochs"),
    ("classifier batch size 0", ["--set", "classifier.batch_size=0"], "batch_size"),
    ("negative image count", ["--set", "images_per_class=-3"], "images_per_class"),
    ("setting of the wrong type", ["--set", "num_inference_steps=many"], "num_inference_steps"),
    ("unknown setting", ["--set", "bogus=1"], "'bogus'"),
    ("setting with markup", ["--set", "[/x]=1"], "[/x]"),
    ("setting without a value", ["--set", "lr"], "'lr'"),
    ("dataset option without a value", ["--dataset-opt", "eurosat"], "--dataset-opt 'eurosat'"),
    ("dataset option without a dataset", ["--dataset-opt", "source=hf"], "source"),
    # data handling
    ("max-bad negative", ["--max-bad", "-1"], "--max-bad -1"),
    ("max-bad NaN", ["--max-bad", "nan"], "--max-bad nan"),
    ("max-bad infinite", ["--max-bad", "inf"], "--max-bad inf"),
    ("decode mode unknown", ["--decode", "some"], "'some'"),
    ("precision unknown", ["--precision", "fp64"], "'fp64'"),
    ("data root missing", ["--dataset", "eurosat", "--data-root", "{tmp}/no-such-folder"], "no-such-folder"),
    ("data root with markup", ["--dataset", "eurosat", "--data-root", "{tmp}/d[/x]"], "d[/x]"),
    ("paper dataset without data root", ["--dataset", "eurosat"], "--data-root"),
    ("model folder missing", ["--sd-model", "{tmp}/m[/x]"], "m[/x]"),
    ("CLIP folder missing", ["--clip-model", "{tmp}/no-clip"], "no-clip"),
]


def arguments(case_args: list[str], tmp_path) -> list[str]:
    given = set(case_args[::2])
    args = [*case_args]
    for option, value in BASE.items():
        if option not in given and not (option == "-m" and "--method" in given):
            args += [option, value]
    return [a.format(tmp=tmp_path, file=tmp_path / "a-file") for a in args]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lower().startswith("error")]


def message(output: str) -> str:
    """The error line, and the indented lines under it where the error lists several findings (a dataset's
    problems, one per file)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lower().startswith("error"))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("what, args, expected", CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_a_one_line_usage_error(what, args, expected, tmp_path, forbid_model_loads):
    (tmp_path / "a-file").write_text("not a folder")
    result = CliRunner().invoke(app, ["run", *arguments(args, tmp_path)])
    print(f"--- {what}: exit {result.exit_code}\n{result.output}")
    assert result.exit_code == 2, result.output
    # An exception that escaped the command would be here (and printed as a traceback by the real command).
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = error_lines(result.output)
    assert len(lines) == 1, result.output
    assert expected in message(result.output), result.output


def test_the_installed_command_prints_no_traceback_for_bad_input(tmp_path):
    """The same, through the real entry point in a fresh process (rich's traceback printer included)."""
    import subprocess
    import sys

    (tmp_path / "a-file").write_text("")
    for args, expected in ((["-m", "[/bold]x"], "[/bold]x"), (["--seeds", ""], "--seeds"),
                           (["--set", "classifier.lr=inf"], "lr")):
        ran = subprocess.run([sys.executable, "-m", "datadream_bench", "run", *arguments(args, tmp_path)],
                             capture_output=True, text=True, timeout=300)
        print(ran.stderr)
        assert ran.returncode == 2, ran.stderr
        assert "Traceback" not in ran.stderr + ran.stdout
        lines = error_lines(ran.stderr)
        assert len(lines) == 1 and expected in lines[0], ran.stderr
