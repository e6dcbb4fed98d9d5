"""rocksr: EDSR/EDSRGAN super-resolution of rock micro-CT slices and volumes (Wang et al. 2020)."""

ROCK_TYPES = ("carbonate", "coal", "sandstone")
SPLITS = ("train", "valid", "test")
