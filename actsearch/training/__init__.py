"""Data, the training loop, populations and probes. No Optuna."""
