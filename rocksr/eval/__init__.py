"""Evaluation: PSNR/SSIM, porosity and texture metrics, scoring the splits and external
sets, and comparing runs. May import the ground floor, imaging, data, nets and infer."""
