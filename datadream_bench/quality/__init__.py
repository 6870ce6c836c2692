"""Quality of each synthetic set, measured in the CLIP image-feature space of the cell's own CLIP (nothing is
downloaded): Fréchet distance, precision/recall/density/coverage, diversity, memorisation of the few shots, and
class consistency. Computed once per generated set and feature model, and kept in the work dir."""
