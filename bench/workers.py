"""Trials per minute with 1, 2 and 4 worker processes on one study, and trials lost or doubled.

    python bench/workers.py [--trials 16] [--storage URL] [--workers 1 2 4]

Each worker count runs a fresh study of the same tiny synthetic space on the same storage
(default: a journal file in a temporary folder; pass a postgresql:// URL to measure a server).
The time includes starting the worker processes (importing torch), as a user would see it.
Lost: requested finished trials missing, or trials left RUNNING/WAITING. Doubled: a trial
number recorded twice, or a retried trial finished alongside its original. Goal: 0 and 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actsearch.engine.storage import make_storage  # noqa: E402
from actsearch.engine.study import FINISHED, open_study  # noqa: E402
from actsearch.engine.workers import WorkerOptions, run_workers  # noqa: E402
from actsearch.errors import mask_url  # noqa: E402
from actsearch.schema.space import parse_space  # noqa: E402

SPACE = {
    "name": "bench_workers",
    "description": "tiny synthetic space for the workers benchmark",
    "data": {"name": "synthetic", "samples": 1000},
    "model": {"family": "mlp", "width": 32, "depth": 2},
    "activations": {"choices": ["relu", "elu", "selu"]},
    "train": {"lr": 0.01, "batch_size": 64, "epochs": 4, "schedule": "cosine"},
    "pruner": {"name": "none"},
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 16},
}


def _lost_and_doubled(study: optuna.Study, trials: int) -> tuple[int, int]:
    from faultlab import tally  # beside this file; it imports this one's SPACE

    counts = tally(study.get_trials(deepcopy=False), trials)
    return counts.lost, counts.duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--storage", help="storage URL (default: a temporary journal file)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("ACTSEARCH_CACHE", str(Path(tmp) / "cache"))
        space = parse_space(SPACE, "bench_workers")
        url = args.storage or f"journal://{Path(tmp) / 'journal.log'}"
        cores = len(os.sched_getaffinity(0))
        print(f"storage {mask_url(url)}, {cores} cores, {args.trials} trials of "
              f"{SPACE['train']['epochs']} epochs per run")
        print(f"{'workers':>7} {'seconds':>8} {'trials/min':>10} {'speed-up':>8} "
              f"{'lost':>4} {'doubled':>7}")
        base = None
        for n in args.workers:
            name = f"bench_workers_{n}_{os.getpid()}_{time.time_ns()}"
            storage = make_storage(url)
            study, _ = open_study(space, name, storage)
            started = time.perf_counter()
            code = run_workers(n, WorkerOptions(url, name, trials=args.trials, device="cpu",
                                                quiet=True))
            seconds = time.perf_counter() - started
            if code != 0:
                print(f"{n} workers: exit status {code}")
                return 1
            per_minute = len(study.get_trials(deepcopy=False, states=FINISHED)) / seconds * 60
            base = base or per_minute
            lost, doubled = _lost_and_doubled(study, args.trials)
            print(f"{n:>7} {seconds:>8.1f} {per_minute:>10.1f} {per_minute / base:>7.2f}x "
                  f"{lost:>4} {doubled:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
