"""`python -m datadream_bench` is the `dd-bench` command."""

from .cli.main import app

app(prog_name="dd-bench")
