"""dd-bench: does synthetic data from a diffusion model help a few-shot classifier, and which way of making it is best?"""

__version__ = "0.1.0"
