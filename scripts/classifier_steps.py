"""The classifier's optimizer steps per method and setting, from the same code `dd-bench plan` and training use.

    .venv/bin/python scripts/classifier_steps.py [--dataset eurosat] [--shots 16] [--profile paper] [--set K=V ...]

Prints a Markdown table: one row per (method, setting), the images per class the method trains on, and the steps.
"""

from __future__ import annotations

import argparse

from datadream_bench.config import parse_overrides
from datadream_bench.perf.plan import plan
from datadream_bench.plugins import load_registry
from datadream_bench.runner.grid import settings_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="eurosat")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE, as for `run`")
    args = parser.parse_args()
    overrides = parse_overrides(args.overrides)
    registry = load_registry()
    print("| method | setting | steps |")
    print("|---|---|---:|")
    for name, method in registry.methods.items():
        for setting in settings_for(method, None):
            if setting == "none":
                continue
            rows = plan([name], [args.dataset], [args.shots], [0], profile=args.profile, settings=[setting],
                        overrides=overrides)
            print(f"| {name} | {setting} | {sum(r.classifier_steps for r in rows):,} |")


if __name__ == "__main__":
    main()
