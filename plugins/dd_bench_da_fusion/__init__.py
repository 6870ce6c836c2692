"""DA-Fusion (Trabucco et al., ICLR 2024) as a dd-bench plugin: a learned token per class, img2img of the shots."""
