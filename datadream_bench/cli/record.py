"""A finished cell's record as a person reads it: `dd-bench show KEY` (the full JSON is `show KEY --json`)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table


def _pairs(title: str, items: dict) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for k, v in items.items():
        table.add_row(str(k), f"{v:.2f}" if isinstance(v, float) else str(v))
    return table


def stage_times(record: dict) -> dict:
    """Seconds per stage, with the part spent loading models said beside it where the record has it."""
    loads = record.get("model_load_s") or {}
    out = {}
    for stage, seconds in record["timings_s"].items():
        load = loads.get(stage, 0.0) if stage != "total" else sum(loads.values())
        out[stage] = f"{seconds:.2f} (loading models {load:.2f})" if load >= 0.005 else f"{seconds:.2f}"
    return out


def render_record(record: dict) -> Group:
    spec, metrics = record["spec"], record["metrics"]
    parts = [
        _pairs("cell", {"key": record["cell_key"], "method": spec["method"], "dataset": spec["dataset"],
                        "shots": spec["shots"], "seed": spec["seed"], "setting": spec["setting"],
                        "classifier": spec["classifier"], "profile": spec["profile"],
                        "top-1 (test)": f"{metrics['top1']:.2f}% of {metrics['n']}"}),
        _pairs("method config", spec["method_config"]) if spec["method_config"] else None,
        _pairs("time per stage (s)", stage_times(record)),
        _pairs("artifacts (fingerprints)", record["artifacts"]),
    ]
    generation = record.get("generation") or {}
    if generation:
        parts.append(_pairs("generation", {k: v for k, v in generation.items() if not isinstance(v, dict)}))
    report = generation.get("filter")
    if report:
        table = Table(title=f"filter: {report['settings']}", title_justify="left")
        columns = ("candidates", "accepted", "rejected", "forced", "acceptance_rate", "filter_seconds")
        table.add_column("class")
        for c in columns:
            table.add_column(c.replace("_", " "), justify="right")
        for name, row in [*report["per_class"].items(), ("total", report["total"])]:
            table.add_row(name, *(str(row[c]) for c in columns))
        parts.append(table)
    env = record["environment"]
    parts.append(_pairs("environment", {"git commit": env["git_commit"], "python": env["python"],
                                        **{k: v for k, v in env["packages"].items() if v},
                                        "hardware": env["hardware"]}))
    return Group(*[p for p in parts if p is not None])
