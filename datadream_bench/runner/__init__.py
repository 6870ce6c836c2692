"""The runner: expands a RunRequest into cells, checks everything before expensive work, runs each cell's stages."""

from .grid import GridOutcome, plan_grid, run_grid

__all__ = ["GridOutcome", "plan_grid", "run_grid"]
