"""Studies, trials, pruning, storages, workers and finalists: where Optuna lives."""
