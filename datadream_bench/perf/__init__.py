"""What the benchmark costs: FLOPs per stage counted on the real architectures (meta tensors, no weights), floors
at a device's peak, and the plan of a whole grid in images, FLOPs and GPU hours."""
