"""Activations (the registry), layouts and building models. No Optuna."""
