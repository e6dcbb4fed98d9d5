"""rocksr: EDSR/EDSRGAN super-resolution of rock micro-CT slices (Wang et al. 2020), 2D."""

ROCK_TYPES = ("carbonate", "coal", "sandstone")
SPLITS = ("train", "valid", "test")
