"""The dataset: DeepRock-SR's archive layout, its download, the split into packs, and the
offline synthetic stand-in. May import the ground floor and rocksr.imaging."""
