"""DataDream as a dd-bench plugin: Stable Diffusion LoRA fine-tuned on the few shots (class-wise or dataset-wise)."""
