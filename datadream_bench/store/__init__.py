"""The results store: one SQLite row per finished cell, with everything needed to trust the number."""

from .results import ResultsStore

__all__ = ["ResultsStore"]
