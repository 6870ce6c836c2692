"""Built-in classifier plugins."""
