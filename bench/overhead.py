"""What does actsearch's objective cost over a bare hand-written PyTorch loop?

Trains the same model (the default space's MLP, all-ELU layout) with the same recipe on the
same device, once through actsearch's Objective inside a real Optuna study (SQLite storage,
per-epoch report and pruner query) and once in a plain loop, alternating, several rounds.
Prints each round's wall times and the median ratio (goal: at most 1.05), and the same with
the per-trial measurements (probes.py), which a bare loop does not make.

    python bench/overhead.py [--rounds 5] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actsearch.data import load_data, to_device  # noqa: E402
from actsearch.layout import parse_layout  # noqa: E402
from actsearch.models import build_model  # noqa: E402
from actsearch.objective import Objective, trial_seed  # noqa: E402
from actsearch.space import load_space  # noqa: E402
from actsearch.storage import make_storage  # noqa: E402
from actsearch.train import configure_threads, select_device  # noqa: E402

LAYOUT = "elu(1.00) | elu(1.00) | elu(1.00)"


def bare_loop(space, data, device, seed: int) -> float:
    """The loop a careful user writes by hand: tensors on the device, randperm batches."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(space.model, parse_layout(LAYOUT), data.input_shape,
                        data.n_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=space.train.lr, fused=True)
    g = torch.Generator(device=device).manual_seed(seed)
    x, y, bs, epochs = data.x_train, data.y_train, space.train.batch_size, space.train.epochs
    for epoch in range(epochs):
        for group in opt.param_groups:  # the same cosine schedule
            group["lr"] = space.train.lr * 0.5 * (1 + torch.cos(torch.tensor(
                torch.pi * epoch / epochs)).item())
        model.train()
        order = torch.randperm(len(x), device=device, generator=g)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), bs):
            loss = F.cross_entropy(model(xs[i:i + bs]), ys[i:i + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    return time.perf_counter() - t0


def through_actsearch(study: optuna.Study, space, data, device, seed: int,
                      measure: bool) -> float:
    """One more trial in a running study: what each trial of a search costs."""
    study.enqueue_trial(parse_layout(LAYOUT).to_params())
    t0 = time.perf_counter()
    study.optimize(Objective(space, data, device, seed, measure=measure), n_trials=1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--storage", default="sqlite", choices=("sqlite", "journal"),
                        help="the study's storage: the default SQLite file or a journal file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = select_device(args.device)
    if device.type == "cpu":
        configure_threads(device, args.threads)
    space = load_space("mnist1d_mlp")
    data = to_device(load_data(space.data, 0), device)
    seed = trial_seed(0, 0)
    with tempfile.TemporaryDirectory() as tmp:
        # One study for all rounds, as in a search: creating it and opening the database
        # happen once per search, not per trial, and stay outside the timings.
        # The space's pruner kind, asked every epoch as in a search, but never allowed to
        # stop a trial: every round trains the full recipe.
        pruner = optuna.pruners.MedianPruner(n_startup_trials=10**9)
        url = (f"sqlite:///{tmp}/bench.db" if args.storage == "sqlite"
               else f"journal://{tmp}/journal.log")
        study = optuna.create_study(storage=make_storage(url), direction="maximize",
                                    pruner=pruner)
        bare_loop(space, data, device, seed)  # warm-up: allocator, lazy imports
        through_actsearch(study, space, data, device, seed, True)
        ratios, probed = [], []
        print(f"device {device}, threads {torch.get_num_threads()}, {space.train.epochs} epochs, "
              f"layout {LAYOUT}, storage {args.storage}")
        print(f"{'round':>5} {'bare s':>8} {'actsearch s':>12} {'ratio':>6} "
              f"{'+probes s':>10} {'ratio':>6}")
        for r in range(args.rounds):
            bare = bare_loop(space, data, device, seed)
            ours = through_actsearch(study, space, data, device, seed, False)
            full = through_actsearch(study, space, data, device, seed, True)
            ratios.append(ours / bare)
            probed.append(full / bare)
            print(f"{r:>5} {bare:>8.3f} {ours:>12.3f} {ours / bare:>6.3f} {full:>10.3f} "
                  f"{full / bare:>6.3f}")
    print(f"median ratio actsearch/bare, training and bookkeeping: "
          f"{statistics.median(ratios):.3f} (goal <= 1.05)")
    print(f"median ratio with the per-trial measurements (probes) too: "
          f"{statistics.median(probed):.3f}")


if __name__ == "__main__":
    main()
