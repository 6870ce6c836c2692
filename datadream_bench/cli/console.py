"""The two consoles: stdout for results only (tables, JSON), stderr for progress and logs.

Both print with rich markup and emoji codes off: method, class, dataset and folder names are the user's text, and
"[/bold]" or ":smile:" in one of them must print as written, never be read as markup (which can crash the printer).
Colour is given with style= or rich.text.Text, never with markup in a string.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

out = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)


def print_table(table) -> None:
    """A table on stdout at its natural width however narrow the terminal: a wide table wraps in the terminal, but
    its numbers and names are never squeezed into ellipses."""
    wide = Console(width=10_000, markup=False, emoji=False)
    wide.width = max(out.width, wide.measure(table).maximum)
    wide.print(table)


def setup_logging(verbose: bool = False) -> None:
    handler = RichHandler(console=err, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("dd_bench").setLevel(logging.DEBUG if verbose else logging.INFO)


def labelled(label: str, message: str, style: str = "red") -> Text:
    """'label: message' with the label coloured; the message is plain text whatever it holds."""
    return Text.assemble((label, style), " ", str(message))


def print_error(message: object, label: str = "error:") -> None:
    # soft_wrap: the message stays one line however narrow the terminal, so it can be grepped and copied whole.
    err.print(labelled(label, str(message)), soft_wrap=True, highlight=False)


def fail_usage(e: object) -> NoReturn:
    """Print a usage error (what is wrong, what is expected) and exit 2."""
    print_error(e)
    raise typer.Exit(2)
