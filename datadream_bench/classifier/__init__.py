"""Classifiers: the base type, and the built-in CLIP-LoRA classifier."""
