"""Inference: upscalers over whole images (bicubic or a trained generator), tiling, and
predicting a user's images. May import the ground floor, imaging, data and nets."""
