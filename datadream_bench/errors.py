"""Errors that the CLI maps to exit codes: a UsageError is the user's to fix (exit 2)."""


class UsageError(Exception):
    """Bad input: an unknown name, an invalid value, a missing file. Raised before any expensive work."""


class ModelNotFoundError(UsageError):
    """A model the profile needs is neither at the given path nor in the local Hugging Face cache."""


class CellFailed(Exception):
    """One cell of a grid failed; the grid goes on with the others."""


class StoreCorrupt(UsageError):
    """The results store is there but unreadable: refused (never replaced), with a way to recover."""
