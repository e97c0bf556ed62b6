"""actsearch's default search vs the hand-written peer, at equal wall-clock time, in one run.

The peer (../shared/peers/naive_optuna_mnist1d.py) is what a user writes without actsearch:
Optuna + PyTorch, DataLoader batches, Adam 1e-3 for up to 40 epochs, MedianPruner, TPE seed 0.
Both get the same seconds on the same machine, one after the other, one thread each. Then each
tool's best layout is retrained with 5 fresh seeds and scored once on MNIST-1D's untouched
test split: the peer's layout with the peer's recipe (what its user walks away with), ours with
actsearch's recipe, and the peer's layout with actsearch's recipe (layout alone compared).

    python bench/peer.py [--seconds 120] [--peer ../shared/peers/naive_optuna_mnist1d.py]
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actsearch.models.build import build_model  # noqa: E402
from actsearch.models.layout import Layer, Layout, parse_layout  # noqa: E402
from actsearch.schema.space import load_space  # noqa: E402
from actsearch.training.data import load_data, to_device  # noqa: E402
from actsearch.training.fit import Recipe, evaluate, fit  # noqa: E402

PEER_RECIPE = Recipe(optimizer="adam", lr=1e-3, batch_size=100, epochs=40, schedule="constant")


def peer_layout(params: dict) -> Layout:
    layers = []
    for i in range(3):
        name = params[f"act_{i}"]
        layers.append(Layer(name, float(params[f"alpha_{i}"]) if name == "elu" else None))
    return Layout(tuple(layers))


def test_accuracy(layout: Layout, recipe: Recipe, seeds: list[int]) -> list[float]:
    space = load_space("mnist1d_mlp")
    accs = []
    for seed in seeds:
        data = to_device(load_data(space.data, seed), "cpu")
        torch.manual_seed(seed)
        model = build_model(space.model, layout, data.input_shape, data.n_classes)
        fit(model, data, recipe, seed)
        accs.append(evaluate(model, data.x_test, data.y_test)[1])
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--peer",
                        default=str(ROOT.parent / "shared/peers/naive_optuna_mnist1d.py"))
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    peer = subprocess.run([sys.executable, args.peer, str(args.seconds), "1"],
                          capture_output=True, text=True, check=True)
    peer_wall = time.perf_counter() - t0
    line = peer.stdout.strip().splitlines()[-1]
    peer_params = ast.literal_eval(re.search(r"best=(\{.*\})", line).group(1))
    peer_val = float(re.search(r"best_val=([0-9.]+)", line).group(1))
    peer_trials = int(re.search(r"trials=(\d+)", line).group(1))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # Search time only: the bench retrains both winners itself (no finalists, no report
        # time counted against either tool).
        subprocess.run([sys.executable, "-m", "actsearch", "search", "--trials", "100000",
                        "--timeout", str(args.seconds), "--runs-dir", tmp, "--plain",
                        "--finalists", "0", "--study", "peer-bench"],
                       check=True, capture_output=True, cwd=ROOT)
        ours_wall = time.perf_counter() - t0
        study = optuna.load_study(study_name="peer-bench",
                                  storage=f"sqlite:///{tmp}/peer-bench/study.db")
        ours_trials = len(study.trials)
        ours_val = study.best_value
        ours_layout = parse_layout(study.best_trial.user_attrs["layout"])

    space = load_space("mnist1d_mlp")
    ours_recipe = Recipe(space.train.optimizer, space.train.lr, space.train.weight_decay,
                         space.train.batch_size, space.train.epochs, space.train.schedule)
    seeds = list(range(100, 100 + args.seeds))
    peer_layout_ = peer_layout(peer_params)
    rows = [
        ("peer layout, peer recipe", peer_layout_, test_accuracy(peer_layout_, PEER_RECIPE,
                                                                 seeds)),
        ("actsearch layout, actsearch recipe", ours_layout,
         test_accuracy(ours_layout, ours_recipe, seeds)),
        ("peer layout, actsearch recipe", peer_layout_,
         test_accuracy(peer_layout_, ours_recipe, seeds)),
    ]
    print(f"budget {args.seconds:.0f}s each, 1 thread, same machine, one after the other")
    print(f"{'tool':<10} {'wall s':>7} {'trials':>7} {'best val (own split)':>21}  best layout")
    print(f"{'peer':<10} {peer_wall:>7.0f} {peer_trials:>7} {peer_val:>21.4f}  {peer_layout_}")
    print(f"{'actsearch':<10} {ours_wall:>7.0f} {ours_trials:>7} {ours_val:>21.4f}  {ours_layout}")
    print(f"test accuracy over {args.seeds} fresh seeds (mean +- sd):")
    for name, layout, accs in rows:
        print(f"  {name:<36} {statistics.mean(accs):.4f} +- {statistics.stdev(accs):.4f}  "
              f"({layout})")
    gain = statistics.mean(rows[1][2]) - statistics.mean(rows[0][2])
    print(f"actsearch - peer test accuracy: {gain:+.4f}; trials ratio "
          f"{ours_trials / max(peer_trials, 1):.1f}x")


if __name__ == "__main__":
    main()
