"""Datasets: adapters that compile a user's copy into one DatasetManifest, the few-shot sampler, image loading."""

from .manifest import DatasetManifest, Sample

__all__ = ["DatasetManifest", "Sample"]
