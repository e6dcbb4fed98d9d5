"""rocksr: EDSR/EDSRGAN super-resolution of rock micro-CT slices and volumes (Wang et al. 2020)."""

__version__ = "0.1.0"  # as pyproject.toml; exported model files and manifests record it

ROCK_TYPES = ("carbonate", "coal", "sandstone")
SPLITS = ("train", "valid", "test")
