"""Built-in reference rows of the leaderboard."""
