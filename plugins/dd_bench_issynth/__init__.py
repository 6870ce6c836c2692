"""IsSynth-style real guidance (He et al., ICLR 2023) as a dd-bench plugin: img2img from a real shot of the class."""
