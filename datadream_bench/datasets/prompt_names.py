"""Class names as prompts spell them, by label.

The canonical class names are CoOp's: they name labels, key seeds and match sources. Prompts (SD fine-tuning,
generation, the classifier head) may spell the same classes another way. DataDream used its own per-dataset lists
(SUBSET_NAMES in its util_data.py): EuroSAT's folder names ("AnnualCrop"), Pets in title case ("American Bulldog"),
Cars with the year last ("AM General Hummer SUV 2000"), ImageNet with its two duplicate CoOp names told apart
("projectile missile", "dark sunglasses"). Those lists are data here (data/datadream_names.json), in each dataset's
canonical label order, and they are the paper datasets' default; `names=coop` keeps CoOp's.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError

DATADREAM_FILE = Path(__file__).parent / "data" / "datadream_names.json"
CHOICES = ("datadream", "coop")
DEFAULT = "datadream"


@lru_cache(maxsize=1)
def datadream_lists() -> dict[str, tuple[str, ...]]:
    """Dataset key -> DataDream's class names in canonical label order."""
    data = json.loads(DATADREAM_FILE.read_text(encoding="utf-8"))
    return {key: tuple(names) for key, names in data["names"].items()}


def prompt_names(key: str, choice: str, classes: tuple[str, ...]) -> tuple[str, ...]:
    """The names prompts use for dataset `key` under `choice`, by label; () means the canonical names themselves.

    A list that does not have one name per class of the copy is not used: validation reports the class count."""
    if choice not in CHOICES:
        raise UsageError(f"{key}: unknown names={choice!r}; valid: {', '.join(CHOICES)}")
    if choice == "coop":
        return ()
    names = datadream_lists().get(key)
    if names is None:
        raise UsageError(f"{key}: DataDream has no class-name list for this dataset; use names=coop")
    return names if len(names) == len(classes) else ()
