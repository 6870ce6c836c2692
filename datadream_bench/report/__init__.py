"""Views of the results store beyond the text leaderboard: LaTeX and HTML tables, the static report site (gallery,
plots, a page per cell), and published reference numbers a user supplies."""
