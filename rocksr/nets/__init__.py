"""The networks: generator, discriminator, VGG19 features and the losses built on them.
May import the ground floor and rocksr.imaging."""
