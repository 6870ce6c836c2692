"""LoFT (Kim et al., 2025) as a dd-bench plugin: one LoRA per real image, several of a class's fused per image."""
