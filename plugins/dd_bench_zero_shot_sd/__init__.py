"""Zero-shot Stable Diffusion as a dd-bench plugin: the base model and the class prompt, no adaptation."""
