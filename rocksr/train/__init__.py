"""Training: the phase loop, one iteration (eager or as a CUDA graph), crop batches,
checkpoints and the loss-term diagnostics. May import every floor below it: the ground
floor, imaging, data, nets, infer and eval."""
