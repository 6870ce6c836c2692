"""Model loading (paper, demo) and tiny random models built in code (tests, plugin checks)."""
