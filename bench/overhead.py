"""What does actsearch's objective cost over a bare hand-written PyTorch loop?

Trains the same model (the default space's MLP, all-ELU layout; with ``--space``, that space's
model, e.g. a factory model such as examples/resnet_digits/space.yaml with ELU in every group)
with the same recipe on the same data and device, alternating, several rounds:

- bare: a plain PyTorch loop, on the model a trial builds (seeded, then actsearch's builder:
  ``build_model`` or a factory model's ``custom.build``);
- optuna floor: that loop as the objective of a real Optuna study (the same storage), with
  nothing but the suggest calls: what any Optuna search pays per trial (ask, params, tell);
- hand-written optuna: the same plus ``trial.report`` and ``trial.should_prune`` each epoch,
  as optuna-examples and ../shared/peers write it;
- actsearch: one more trial of a running study through actsearch's trial driver (the budget's
  slot, per-epoch report and pruner query, the trial record the reports need), and the same
  with the per-trial measurements (probes.py), which the others do not make.

Prints each round's wall times and the median ratios to the bare loop (goal for actsearch:
at most 1.05) and of actsearch to the hand-written Optuna trial.

    python bench/overhead.py [--rounds 5] [--trials 4] [--device cpu] [--threads 1]
                             [--space examples/resnet_digits/space.yaml]
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

from actsearch.engine.budget import TrialBudget  # noqa: E402
from actsearch.engine.driver import run_trials, trial_seed  # noqa: E402
from actsearch.engine.storage import make_storage  # noqa: E402
from actsearch.engine.suggest import suggest_candidate  # noqa: E402
from actsearch.models.build import build_model  # noqa: E402
from actsearch.models.custom import with_sites  # noqa: E402
from actsearch.models.layout import Layout, parse_layout  # noqa: E402
from actsearch.schema.space import load_space  # noqa: E402
from actsearch.training.data import factory_data, load_data, to_device  # noqa: E402
from actsearch.training.fit import configure_threads, select_device  # noqa: E402

ACTIVATION = "elu(1.00)"  # in every layer, or every group of a factory model's sites


def bench_layout(space) -> Layout:
    """ELU in each of the MLP's layers, or in each group of a factory model's sites."""
    if space.custom is None:
        return parse_layout(" | ".join([ACTIVATION] * space.model.depth))
    names = tuple(g.name for g in space.custom.groups)
    return Layout(parse_layout(" | ".join([ACTIVATION] * len(names))).layers, names)


def trial_model(space, layout: Layout, data, seed: int) -> torch.nn.Module:
    """The model a trial trains: seeded, then built by actsearch's builder, as
    ``SequentialTrainer`` builds it (a factory model: the user's, its sites replaced)."""
    torch.manual_seed(seed)
    model = (space.custom.build(layout) if space.custom is not None
             else build_model(space.model, layout, data.input_shape, data.n_classes))
    return model.to(data.x_train.device, data.x_train.dtype)


def bare_loop(space, data, device, seed: int, on_epoch=None) -> float:
    """The loop a careful user writes by hand: tensors on the device, randperm batches, the
    space's recipe (Adam, its weight decay and schedule).

    ``on_epoch(epoch, val_acc)`` runs after each epoch's validation (Optuna's report).
    """
    t0 = time.perf_counter()
    model = trial_model(space, bench_layout(space), data, seed)
    recipe = space.train
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                           fused=True)
    g = torch.Generator(device=device).manual_seed(seed)
    x, y, bs, epochs = data.x_train, data.y_train, recipe.batch_size, recipe.epochs
    for epoch in range(epochs):
        for group in opt.param_groups if recipe.schedule == "cosine" else ():
            group["lr"] = recipe.lr * 0.5 * (1 + torch.cos(torch.tensor(
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
            acc = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
        if on_epoch is not None:
            on_epoch(epoch + 1, acc)
    return time.perf_counter() - t0


def hand_written_optuna(study: optuna.Study, space, data, device, seed: int,
                        report: bool, n: int) -> float:
    """The bare loop as an Optuna objective: the same suggest calls as actsearch (the
    layout's params), and with ``report`` a report and a pruner query each epoch; ``n``
    trials in one ``optimize``, seconds per trial."""
    for _ in range(n):
        study.enqueue_trial(bench_layout(space).to_params())

    def objective(trial: optuna.Trial) -> float:
        suggest_candidate(trial, space)

        def on_epoch(epoch: int, acc: float) -> None:
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        bare_loop(space, data, device, seed, on_epoch if report else None)
        return 0.0

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return (time.perf_counter() - t0) / n


def through_actsearch(study: optuna.Study, budget: TrialBudget, space, data, device,
                      seed: int, measure: bool, n: int) -> float:
    """``n`` more trials in a running study: what each trial of a search costs.

    The study's budget grows by ``n`` trials a round; as in the default search, the study is
    alone on its storage (no other worker to watch for). Seconds per trial.
    """
    for _ in range(n):
        study.enqueue_trial(bench_layout(space).to_params())
    t0 = time.perf_counter()
    budget.trials += n
    run_trials(study, space, data, trials=budget.trials, measure=measure, budget=budget)
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=4, help="trials of each variant a round, "
                        "in one search (its start and end are paid once, as in a real search)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--storage", default="sqlite", choices=("sqlite", "journal"),
                        help="the study's storage: the default SQLite file or a journal file")
    parser.add_argument("--space", default=None, help="a shipped space's name or a space file "
                        "(default: the default space's MLP), e.g. a factory model's such as "
                        "examples/resnet_digits/space.yaml")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = select_device(args.device)
    if device.type == "cpu":
        configure_threads(device, args.threads)
    space = load_space(args.space or "mnist1d_mlp")
    if space.train.optimizer != "adam" or not isinstance(space.train.lr, float) \
            or len(space.model.norm) > 1 or not isinstance(space.model.depth, int):
        sys.exit(f"{space.source}: the bench's hand-written loop needs Adam and a fixed lr, "
                 "depth and norm")
    # The data a search trains on (a data factory's splits as returned), and a factory
    # model's sites found on two of its samples, as the search finds them.
    dataset = factory_data(space.data) if space.data.factory is not None \
        else load_data(space.data, 0)
    space = with_sites(space, torch.as_tensor(dataset.x_train[:2], dtype=torch.float32))
    data = to_device(dataset, device, torch.float32)
    seed = trial_seed(0, 0)
    with tempfile.TemporaryDirectory() as tmp:
        # One storage and one study per variant for all rounds, as in a search: creating
        # them happens once per search, not per trial, and stays outside the timings.
        # The space's pruner kind, asked every epoch as in a search, but never allowed to
        # stop a trial: every round trains the full recipe.
        url = (f"sqlite:///{tmp}/bench.db" if args.storage == "sqlite"
               else f"journal://{tmp}/journal.log")
        storage = make_storage(url)

        def study(name: str) -> optuna.Study:
            return optuna.create_study(
                storage=storage, study_name=name, direction="maximize",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=10**9))

        floor_study, hand_study, ours_study = study("floor"), study("hand"), study("actsearch")
        budget = TrialBudget(ours_study, 0, concurrent=False)
        variants = {
            "bare": lambda: sum(bare_loop(space, data, device, seed)
                                for _ in range(args.trials)) / args.trials,
            "floor": lambda: hand_written_optuna(floor_study, space, data, device, seed, False,
                                                 args.trials),
            "hand": lambda: hand_written_optuna(hand_study, space, data, device, seed, True,
                                                args.trials),
            "actsearch": lambda: through_actsearch(ours_study, budget, space, data, device,
                                                   seed, False, args.trials),
            "+probes": lambda: through_actsearch(ours_study, budget, space, data, device, seed,
                                                 True, args.trials),
        }
        for run in variants.values():  # warm-up: allocator, lazy imports, first writes
            run()
        print(f"{f'space {space.name}, ' if args.space else ''}device {device}, threads "
              f"{torch.get_num_threads()}, {space.train.epochs} epochs, layout "
              f"{bench_layout(space)}, storage {args.storage}; wall seconds per trial")
        print(f"{'round':>5} " + " ".join(f"{name:>10}" for name in variants)
              + f" {'actsearch/bare':>15}")
        times: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for name, run in variants.items():
                times[name].append(run())
            print(f"{r:>5} " + " ".join(f"{times[n][-1]:>10.3f}" for n in variants)
                  + f" {times['actsearch'][-1] / times['bare'][-1]:>15.3f}")

    def ratio(a: str, b: str) -> float:  # paired: the same round's two runs
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    print("median ratios (same round):")
    print(f"  actsearch / bare loop:            {ratio('actsearch', 'bare'):.3f} (goal <= 1.05)")
    print(f"  optuna floor / bare loop:         {ratio('floor', 'bare'):.3f} "
          "(ask, suggest, tell: any Optuna search)")
    print(f"  hand-written optuna / bare loop:  {ratio('hand', 'bare'):.3f} "
          "(+ report and should_prune each epoch)")
    print(f"  actsearch / hand-written optuna:  {ratio('actsearch', 'hand'):.3f}")
    print(f"  actsearch with probes / bare:     {ratio('+probes', 'bare'):.3f}")

if __name__ == "__main__":
    main()
