"""The search engine: studies, the trial driver and record, budgets, pruning, storages,
workers and finalists; where Optuna lives."""
