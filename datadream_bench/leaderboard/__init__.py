"""The leaderboard: methods x datasets, mean ± std over seeds of top-1 on the real test split. Reads the store only.

A row is one experiment: (method, setting, shots, profile, classifier) and the fingerprint of everything else the
result depends on (method and classifier config, precision, checkpoints, data protocol, plugin version), so runs with
different `--set` overrides or checkpoints are never pooled into one mean. Rows that differ only in that config say
what differs. Within a row and dataset a seed counts once (its latest result), and results on an older copy of the
dataset are left out. Against the grid the runs asked for (the planned cells), missing seeds and cells are marked.
"""

from .board import (BLOCKS, REFERENCE_SETTINGS, SPLITTERS, Leaderboard, Row, Score, build, comparable,
                    config_fingerprint, differences, experiment, from_store)
from .formats import (FORMATS, caption, notes, score_json, to_csv, to_html, to_json, to_latex, to_markdown,
                      to_rich)

__all__ = ["BLOCKS", "FORMATS", "REFERENCE_SETTINGS", "SPLITTERS", "Leaderboard", "Row", "Score", "build", "caption",
           "comparable", "config_fingerprint", "differences", "experiment", "from_store", "notes", "score_json",
           "to_csv", "to_html", "to_json", "to_latex", "to_markdown", "to_rich"]
