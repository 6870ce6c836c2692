"""dd-bench: run generation methods x datasets, collect the results, print the leaderboard.

Heavy libraries (torch, diffusers) are imported inside the commands, so --help and usage errors stay fast.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .console import err, fail_usage, labelled, out, print_error, setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Does synthetic data from a diffusion model help a few-shot classifier, and which way of "
                       "making it is best? Runs DataDream and its baselines uniformly and keeps a leaderboard.")

WorkDirOpt = Annotated[Path, typer.Option("--work-dir", "-w", help="artifacts and the results store live here")]
DEFAULT_WORK_DIR = Path("dd-bench-work")


def split_list(values: list[str] | None, what: str) -> list[str] | None:
    """Repeated options and comma-separated values both work: -m a -m b == -m a,b. Not given: None; given but
    empty (--seeds ''): a usage error, never a silent default."""
    if not values:
        return None
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--{what} {','.join(values)!r}: no value given; expected at least one, comma-separated")
    return items


def int_list(values: list[str] | None, what: str) -> list[int] | None:
    items = split_list(values, what)
    if items is None:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise UsageError(f"--{what}: expected whole numbers separated by commas, got {','.join(items)!r}") from None


def dataset_options(pairs: list[str] | None) -> dict[str, dict]:
    """--dataset-opt eurosat.source=hf -> {"eurosat": {"source": "hf"}}."""
    from ..config import parse_overrides

    out_opts: dict[str, dict] = {}
    for key, value in parse_overrides(pairs or [], "--dataset-opt").items():
        dataset, dot, option = key.partition(".")
        if not dot or not option:
            raise UsageError(f"--dataset-opt {key}=...: expected DATASET.OPTION=VALUE, e.g. eurosat.source=coop")
        out_opts.setdefault(dataset, {})[option] = str(value) if isinstance(value, Path) else value
    return out_opts


def stop_if_disk_full(e: BaseException, work_dir: Path) -> None:
    """A full disk before any cell ran: one line saying so (exit 1); anything else goes on up as it was."""
    from ..diskspace import disk_full_before_cells, is_disk_full

    if not is_disk_full(e):
        raise e
    print_error(disk_full_before_cells(work_dir, e))
    raise typer.Exit(1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs on stderr")] = False) -> None:
    setup_logging(verbose)


@app.command()
def run(
    method: Annotated[list[str], typer.Option("--method", "-m", help="method name(s), comma-separated, or all")],
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="dataset key(s), or all; "
                                                         "default: the profile's (the built-in demo)")] = None,
    data_root: Annotated[Optional[Path], typer.Option(help="the folder holding your datasets")] = None,
    shots: Annotated[Optional[list[str]], typer.Option(help="real images per class, e.g. 16 or 1,2,4,8,16")] = None,
    seeds: Annotated[list[str], typer.Option(help="seeds, comma-separated")] = ["0,1,2"],
    setting: Annotated[Optional[list[str]], typer.Option(help="synthetic and/or synthetic+real; default both")] = None,
    classifier: Annotated[str, typer.Option(help="classifier plugin")] = "clip-lora",
    profile: Annotated[Optional[str], typer.Option(help="paper | demo (alias smoke) | tiny; default: demo when "
                                                   "no --dataset is given, else paper")] = None,
    work_dir: WorkDirOpt = DEFAULT_WORK_DIR,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE config override: a method setting "
                                                      "(images_per_class=100, or datadream-cls.lr=1e-4) or "
                                                      "classifier.KEY=VALUE")] = None,
    dataset_opt: Annotated[Optional[list[str]], typer.Option(help="DATASET.OPTION=VALUE, e.g. "
                                                             "eurosat.source=hf")] = None,
    sd_model: Annotated[Optional[str], typer.Option(help="Stable Diffusion folder or cached hub id")] = None,
    clip_model: Annotated[Optional[str], typer.Option(help="CLIP folder or cached hub id")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ...; default cuda if available")] = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32 | bf16 | fp16; default bf16 on GPU, fp32 on CPU")]
    = None,
    batch_size: Annotated[Optional[int], typer.Option(help="generation batch size (never changes the images)")]
    = None,
    compile_unet: Annotated[bool, typer.Option("--compile", help="torch.compile the UNet (the same images; "
                                               "the first call compiles for about a minute)")] = False,
    skip_bad: Annotated[bool, typer.Option(help="skip undecodable images (counted in the record, capped by "
                                           "--max-bad) instead of stopping")] = False,
    max_bad: Annotated[float, typer.Option(help="with --skip-bad: stop past this fraction of rows (or this many, "
                                           "if >= 1)")] = 0.01,
    decode: Annotated[str, typer.Option(help="images fully decoded before any model loads: all | fewshot")]
    = "all",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable outcome alone on stdout")] = False,
    executor: Annotated[str, typer.Option(help="local (one cell after another, here) | ray (a Ray cluster)")]
    = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="with --executor ray: auto joins the running cluster; "
                                                       "default: a local one for this run")] = None,
    shard_images: Annotated[Optional[int], typer.Option(help="with --executor ray: split each generated set over "
                                                        "N workers by image id (default: automatic)")] = None,
) -> None:
    """Run cells (method x dataset x shots x seed x setting); finished cells are skipped."""
    try:
        from ..runner.executor import make_executor

        grid_executor = make_executor(executor, ray_address, shard_images)
        from ..config import parse_overrides
        from ..plugins import load_registry
        from ..runner import plan_grid
        from ..spec import RunRequest

        datasets = split_list(dataset, "dataset")
        request = RunRequest(
            methods=split_list(method, "method"), datasets=datasets, shots=int_list(shots, "shots"),
            seeds=int_list(seeds, "seeds"), settings=split_list(setting, "setting"), classifier=classifier,
            profile=profile or ("paper" if datasets else "demo"), work_dir=work_dir, data_root=data_root,
            dataset_options=dataset_options(dataset_opt), overrides=parse_overrides(set_ or []),
            sd_model=sd_model, clip_model=clip_model, device=device, precision=precision, batch_size=batch_size,
            skip_bad=skip_bad, max_bad=max_bad, decode=decode, compile=compile_unet,
        )
        registry = load_registry()
        from .progress import RichReporter

        with RichReporter() as checking:  # a bar while each dataset's files are read and decoded
            cells = plan_grid(request, registry, progress=checking.progress, devices_here=executor == "local")
        from ..diskspace import check_free_space
        from ..runner.workdir import WorkDir

        check_free_space(cells, WorkDir(work_dir))
    except UsageError as e:
        fail_usage(e)
    except OSError as e:
        stop_if_disk_full(e, work_dir)

    from ..runner import run_grid
    from .leaderboard_cmd import Fmt, show_board
    from .progress import RichReporter

    err.print(f"{len(cells)} cell(s); work dir {work_dir}", highlight=False)
    try:
        with RichReporter() as reporter:
            outcome = run_grid(cells, work_dir, reporter, executor=grid_executor)
    except UsageError as e:  # the store found unreadable when the grid opens it; a cluster that cannot run a task
        fail_usage(e)
    except Exception as e:  # noqa: BLE001 - a full disk before the first cell (the planned cells' write)
        stop_if_disk_full(e, work_dir)
    done, skipped, failed = (outcome.with_status(s) for s in ("done", "skipped", "failed"))
    not_run = len(cells) - len(outcome.outcomes)
    err.print(f"{len(done)} done, {len(skipped)} already finished, {len(failed)} failed"
              + (f", {not_run} not run" if not_run else ""), highlight=False)
    for f in failed:
        err.print(labelled("  failed", f"{f.spec.label()}: {f.error}"), highlight=False)
    if outcome.stopped:
        print_error(outcome.stopped)
    if as_json:
        print(json.dumps({"cells": [{"key": o.spec.key(), **o.spec.model_dump(mode="json", include={
            "method", "dataset", "shots", "seed", "setting", "profile"}), "status": o.status, "top1": o.top1,
            "seconds": o.seconds, "error": o.error} for o in outcome.outcomes], "stopped": outcome.stopped,
            "not_run": not_run}, indent=1))
    else:
        keys = {o.spec.key() for o in outcome.outcomes if o.status != "failed"}
        show_board(work_dir, Fmt.table, keys=keys)
    raise typer.Exit(1 if failed else 0)


@app.command()
def show(key: Annotated[str, typer.Argument(help="a cell key or its first characters (see `dd-bench results`)")],
         work_dir: WorkDirOpt = DEFAULT_WORK_DIR,
         as_json: Annotated[bool, typer.Option("--json", help="the full record as JSON")] = False) -> None:
    """One finished cell: what produced it, how long each stage took, the generation and filter report, metrics."""
    from ..store import ResultsStore
    from .record import render_record

    try:
        record = ResultsStore(work_dir / "results.sqlite").record(key)
    except UsageError as e:
        fail_usage(e)
    if as_json:
        print(json.dumps(record, indent=1, sort_keys=True))
    else:
        out.print(render_record(record))


class Kind(str, Enum):
    methods = "methods"
    datasets = "datasets"
    classifiers = "classifiers"
    captioners = "captioners"
    profiles = "profiles"


@app.command("list")
def list_cmd(kind: Annotated[Kind, typer.Argument(help="methods | datasets | classifiers | captioners | profiles")],
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What is installed, plugins included."""
    from rich.table import Table

    if kind == Kind.profiles:
        from ..profiles import PROFILES

        entries = [{"name": p.name, "description": p.description, "sd_model": p.sd_model,
                    "clip_model": p.clip_model} for p in PROFILES.values()]
    else:
        from ..plugins import load_registry

        registry = load_registry()
        entries = []
        for name, obj in getattr(registry, kind.value).items():
            entry = {"name": name, "plugin": registry.owner[(kind.value, name)],
                     "description": getattr(obj, "description", "")}
            if kind == Kind.methods:
                entry["settings"] = list(obj.settings)
                entry["config"] = {f: {"default": info.default, "help": info.description}
                                   for f, info in obj.Config.model_fields.items()}
            entries.append(entry)
    if as_json:
        print(json.dumps(entries, indent=1, default=str))
        return
    table = Table()
    cols = [c for c in ("name", "plugin", "settings", "description") if any(c in e for e in entries)] or ["name"]
    for c in cols:
        table.add_column(c)
    for e in entries:
        table.add_row(*[", ".join(e[c]) if isinstance(e.get(c), list) else str(e.get(c, "")) for c in cols])
    out.print(table)


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Loaded plugins: name, version, hooks, and the error of any that failed to load."""
    from rich.table import Table

    from ..plugins import load_registry

    registry = load_registry()
    entries = [{"name": p.name, "module": p.module, "version": p.version, "builtin": p.builtin, "hooks": p.hooks,
                "error": p.error} for p in registry.plugins]
    if as_json:
        print(json.dumps(entries, indent=1))
        return
    table = Table()
    for c in ("name", "version", "hooks", "status"):
        table.add_column(c)
    for e in entries:
        status = (labelled("failed:", e["error"]) if e["error"]
                  else ("built-in" if e["builtin"] else "loaded"))
        table.add_row(e["name"], e["version"] or "", ", ".join(e["hooks"]), status)
    out.print(table)


# Commands that live in their own modules, mounted after the ones above so that --help lists them last.
from .datasets_cmd import app as datasets_app  # noqa: E402
from .du_cmd import du as du_cmd  # noqa: E402
from .leaderboard_cmd import leaderboard as leaderboard_cmd  # noqa: E402
from .merge_cmd import merge as merge_cmd  # noqa: E402
from .plan_cmd import plan as plan_cmd  # noqa: E402
from .quality_cmd import quality as quality_cmd  # noqa: E402
from .report_cmd import report as report_cmd  # noqa: E402
from .results_cmd import results as results_cmd  # noqa: E402

app.command("leaderboard")(leaderboard_cmd)
app.command("plan")(plan_cmd)
app.command("quality")(quality_cmd)
app.command("report")(report_cmd)
app.command("results")(results_cmd)
app.command("merge")(merge_cmd)
app.command("du")(du_cmd)
app.add_typer(datasets_app, name="datasets", help="Check a dataset copy: classes, splits, bad files, fingerprint.")
