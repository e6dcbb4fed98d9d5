"""Data stage: the DeepRock-SR archive (download, synthetic stand-in), pairing and packing."""
