"""DISEF-style synthetic data (da Costa et al. 2023) as a dd-bench plugin: captioned img2img plus a CLIP filter."""
