"""Pixels and images: reading and writing users' images, grey channels, intensity windows,
value ranges, bicubic resizing and the HR -> LR degradation. May import the ground floor."""
