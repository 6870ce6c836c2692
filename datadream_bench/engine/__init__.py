"""The generation engine: what every method shares (batching, seeds, LoRA merge, precision, files, resume)."""
