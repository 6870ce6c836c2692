"""The two consoles: stdout for results only (tables, JSON), stderr for progress and logs."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

out = Console()
err = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    handler = RichHandler(console=err, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("dd_bench").setLevel(logging.DEBUG if verbose else logging.INFO)
