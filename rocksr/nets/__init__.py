"""The networks: generator, discriminator, VGG19 features and the losses built on them, and
the VGG19 weights files. May import the ground floor, rocksr.imaging and rocksr.data (the
weights' download reuses the archive's)."""
