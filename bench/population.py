"""Candidates per minute: one at a time (train.fit) vs populations of K at once.

Trains the same N candidates of a space (default mnist1d_mlp on MNIST-1D: the uniform
baselines, then layouts from a seeded random sampler, each with its own trial seed) without
pruning, first one by one with ``train.fit``, then as populations of each size K on the same
device, and prints the throughput, its ratio to sequential, and whether the best layout (by
final validation accuracy) is the same. A plain MLP over relu/elu/selu trains as the
hand-written population, any other model (``--space examples/resnet_digits/space.yaml``, a
CNN, a factory model) as a ``torch.func`` stack (training/batched.py).

    python bench/population.py --device cuda                    # N=128, K=1,8,32,128
    python bench/population.py --device cuda --dtype float64    # the same, exactly
    python bench/population.py --quick                          # a small CPU run
    python bench/population.py --space examples/resnet_digits/space.yaml --quick

Each candidate trains 10 epochs (the space trains 20): an epoch costs the same either way, so
the ratios hold, and the slowest mode (K=1, the population code with one member, which a
search never uses) keeps the whole run under five minutes on an H100.

Populations follow each candidate's sequential trajectory up to rounding; in float32 rounding
grows over the epochs, so validation accuracies may differ slightly (the max difference is
printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
import torch  # noqa: E402

from actsearch.engine.driver import trial_seed  # noqa: E402
from actsearch.engine.suggest import suggest_candidate  # noqa: E402
from actsearch.models.custom import with_sites  # noqa: E402
from actsearch.models.layout import (  # noqa: E402
    Candidate,
    candidate_from_params,
    uniform_candidates,
)
from actsearch.schema.space import SearchSpace, load_space  # noqa: E402
from actsearch.training.data import (  # noqa: E402
    DeviceData,
    factory_data,
    load_data,
    to_device,
)
from actsearch.training.fit import (  # noqa: E402
    configure_threads,
    evaluate,
    fit,
    recipe_for,  # noqa: E402
    select_device,
)
from actsearch.training.population import handwritten, train_candidates  # noqa: E402
from actsearch.training.trainers import start_model  # noqa: E402

Run = list[tuple[str, float]]  # per candidate: layout, final validation accuracy


def candidates(space: SearchSpace, n: int, seed: int) -> list[tuple[Candidate, int]]:
    """The uniform baselines, then random layouts; each with its trial seed."""
    params = uniform_candidates(space)[:n]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found = [candidate_from_params(p, space) for p in params]
    while len(found) < n:
        found.append(suggest_candidate(study.ask(), space))
    return [(c, trial_seed(seed, i)) for i, c in enumerate(found)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sequential(space: SearchSpace, data: DeviceData, jobs: list[tuple[Candidate, int]],
               device: torch.device) -> Run:
    out = []
    for candidate, seed in jobs:
        model = start_model(space, data, candidate, seed)
        result = fit(model, data, recipe_for(space, candidate), seed)
        evaluate(model, data.x_test, data.y_test)  # as a complete trial does
        out.append((str(candidate.layout), result.history[-1].val_acc))
    return out


def population(k: int) -> Callable[[SearchSpace, DeviceData, list, torch.device], Run]:
    def run(space: SearchSpace, data: DeviceData, jobs: list[tuple[Candidate, int]],
            device: torch.device) -> Run:
        members = train_candidates(space, data, jobs, k)
        return [(str(m.candidate.layout), m.result.history[-1].val_acc) for m in members]

    return run


def timed(fn: Callable[..., Run], *args: object) -> tuple[float, Run]:
    device = args[-1]
    sync(device)
    started = time.perf_counter()
    run = fn(*args)
    sync(device)
    return time.perf_counter() - started, run


def best(run: Run) -> tuple[str, float]:
    return max(run, key=lambda r: r[1])  # first of ties, as sorted by input order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mnist1d_mlp",
                        help="a shipped space's name or a space file (default mnist1d_mlp)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--candidates", type=int, help="N candidates (default 128; quick 12)")
    parser.add_argument("--sizes", help="population sizes K (default 1,8,32,128; quick 1,4,12)")
    parser.add_argument("--epochs", type=int, help="epochs per candidate (default 10; quick 3)")
    parser.add_argument("--samples", type=int,
                        help="train on the first N training samples (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small setting for a CPU")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="float64 makes populations follow the sequential runs exactly, "
                        "so the best layout must be the same (float32 rounds differently)")
    args = parser.parse_args(argv)
    n = args.candidates or (12 if args.quick else 128)
    sizes = [int(s) for s in (args.sizes or ("1,4,12" if args.quick else "1,8,32,128"))
             .split(",")]
    device = select_device(args.device)
    threads = configure_threads(device) if device.type == "cpu" else None

    space = load_space(args.space)
    epochs = args.epochs or (3 if args.quick else 10)
    space = dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=epochs))
    dataset = factory_data(space.data) if space.data.factory is not None \
        else load_data(space.data, args.seed)
    data = to_device(dataset, device, getattr(torch, args.dtype))
    if args.samples:
        data = dataclasses.replace(data, x_train=data.x_train[:args.samples],
                                   y_train=data.y_train[:args.samples])
    space = with_sites(space, data.x_train[:2].float().cpu())
    jobs = candidates(space, n, args.seed)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    how = "hand-written MLP population" if handwritten(space) else "torch.func stack"
    print(f"{n} candidates of {space.name} x {epochs} epochs ({len(data.x_train)} samples) in "
          f"{args.dtype} on {device} ({name}{f', {threads} thread' if threads else ''}), "
          f"torch {torch.__version__}; populations: {how}")

    # Warm-up (CUDA context, cuBLAS handles, allocator) outside the timings.
    warm = dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=1))
    sequential(warm, data, jobs[:1], device)
    train_candidates(warm, data, jobs[:2], 2)

    rows = [("sequential (fit)", *timed(sequential, space, data, jobs, device))]
    print(f"  sequential done in {rows[0][1]:.1f} s", flush=True)
    for k in sizes:
        rows.append((f"population K={k}", *timed(population(k), space, data, jobs, device)))
        print(f"  K={k} done in {rows[-1][1]:.1f} s", flush=True)

    base_seconds, base_run = rows[0][1], rows[0][2]
    base_best = best(base_run)
    print()
    print(f"{'mode':<18} {'seconds':>8} {'cand/min':>9} {'x seq':>6} {'max |dacc|':>10}  "
          f"best layout (val acc)  same best")
    for label, seconds, run in rows:
        per_minute = 60 * n / seconds
        diff = max(abs(a[1] - b[1]) for a, b in zip(run, base_run, strict=True))
        layout, acc = best(run)
        print(f"{label:<18} {seconds:>8.2f} {per_minute:>9.1f} {base_seconds / seconds:>6.2f} "
              f"{diff:>10.4f}  {layout} ({acc:.4f})  {'yes' if layout == base_best[0] else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
