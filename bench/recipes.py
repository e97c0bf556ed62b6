"""Are the shipped recipes converged? The uniform baselines' shipped vs a reference recipe.

For each shipped space (or each ``--space``), each uniform baseline (every activation of the
space's choices on every layer, default parameters, as ``uniform_candidates`` gives them) is
trained with ``build_model`` + ``fit`` exactly as a search trains a trial
(``torch.manual_seed(seed)`` before ``build_model``, ``fit(model, data, recipe, seed)``, one CPU
thread), under every recipe of a grid around the shipped one: learning rate x epochs x weight
decay (the rest of the recipe, schedule included, as shipped; the shipped recipe is always
in the grid). Per activation, the reference is the grid's recipe with the best mean
VALIDATION accuracy (last epoch, as a search scores a trial) over the seeds; it is then scored
on the TEST split, which nothing else looks at. Seed s carves its own validation split (as a
search's trial seed does); the test split is fixed.

It prints one table: space, activation, the shipped recipe's test accuracy (mean +- std over
the seeds), the reference recipe and its test accuracy, their difference in points and whether
the shipped recipe is within 2 points; then, per space, every grid recipe's mean validation and
test accuracy per activation, and the cheapest recipe measured (fewest epochs, then fewest
changed settings) whose test accuracy is within 2 points of the reference for every
activation, with its cost relative to the shipped recipe: the ratio of epochs (a recipe's
time per epoch does not depend on its learning rate or weight decay) and the measured ratio of
training seconds (noisy on a shared machine: runs of one recipe may have met more load).

    python bench/recipes.py --grid quick --seeds 2 --space digits_mlp      # a smoke run
    python bench/recipes.py --space mnist1d_mlp --json out.json            # full grid, 5 seeds
    python bench/recipes.py --space mnist1d_cnn --screen 2 --keep 3 --json out.json

Grids: ``full`` is lr {0.5, 1, 2} x shipped, epochs {1, 3, 10} x shipped, weight decay
{0, 1e-4, 1e-3} (Adam's coupled L2, the shipped optimizer's); ``quick`` is lr 1x, epochs
{1, 2} x, weight decay {0, 1e-3}; ``--lr-x``, ``--epochs-x`` and ``--wd`` replace an axis.

``--screen S``: every recipe trains on the first S seeds only; per activation the ``--keep K``
best by mean validation accuracy over those S seeds (and the shipped recipe) train on the other
seeds; the reference is chosen among the recipes trained on all seeds.

``--json OUT`` keeps every run (one record per line; gzipped when OUT ends in .gz) and is
rewritten after each one; a rerun with the same file skips the runs it holds (resumable; with
nothing left to train it just prints the tables). ``--load FILE`` adds the runs of other files
(read only), e.g. to print one table from runs made by several processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from actsearch.models.build import build_model  # noqa: E402
from actsearch.models.layout import (  # noqa: E402
    Candidate,
    candidate_from_params,
    uniform_candidates,
)
from actsearch.schema.space import SearchSpace, list_shipped_spaces, load_space  # noqa: E402
from actsearch.training.data import DeviceData, load_data, to_device  # noqa: E402
from actsearch.training.fit import (  # noqa: E402
    Recipe,
    configure_threads,
    evaluate,
    fit,
    recipe_for,
    select_device,
)

GRIDS = {  # lr multipliers, epoch multipliers, weight decays
    "quick": ((1.0,), (1.0, 2.0), (0.0, 1e-3)),
    "full": ((0.5, 1.0, 2.0), (1.0, 3.0, 10.0), (0.0, 1e-4, 1e-3)),
}
WITHIN = 0.02  # 2 points of accuracy
# MNIST-1D paper (Greydanus 2020), test accuracy of the authors' models on the same data set.
PUBLISHED = {"mlp": 0.68, "cnn1d": 0.94}
PUBLISHED_NOTE = (
    "published: MNIST-1D paper (Greydanus 2020) test accuracy, MLP about 0.68, CNN about 0.94;\n"
    "issue 12 measured the paper's ConvBase (kernels 5/3/3, padding 1, Adam 1e-2, 6000 steps)\n"
    "with this project's code at 0.912 +- 0.015 on this split."
)

Key = tuple  # (space, activation, optimizer, lr, epochs, weight_decay, batch_size, schedule, seed)


@dataclasses.dataclass(frozen=True)
class Config:
    """One recipe of the grid, as multipliers of the shipped one and an absolute decay."""

    lr_x: float
    epochs_x: float
    wd: float

    def recipe(self, shipped: Recipe) -> Recipe:
        return dataclasses.replace(shipped, lr=shipped.lr * self.lr_x, weight_decay=self.wd,
                                   epochs=max(1, round(shipped.epochs * self.epochs_x)))

    def changes(self, shipped: Recipe) -> int:
        """How many of lr, epochs, weight decay differ from the shipped recipe."""
        return (self.lr_x != 1.0) + (self.epochs_x != 1.0) + (self.wd != shipped.weight_decay)


def key(space: str, activation: str, recipe: Recipe, seed: int) -> Key:
    return (space, activation, recipe.optimizer, round(recipe.lr, 10), recipe.epochs,
            recipe.weight_decay, recipe.batch_size, recipe.schedule, seed)


def record_key(r: dict) -> Key:
    return (r["space"], r["act"], r["opt"], round(r["lr"], 10), r["epochs"], r["wd"], r["bs"],
            r["sched"], r["seed"])


class Results:
    """Runs by key, kept in one JSON file (one record per line), rewritten after each run."""

    def __init__(self, out: Path | None, extra: list[Path]) -> None:
        self.out, self.runs, self.mine = out, {}, []
        for path in [*extra, *([out] if out is not None and out.exists() else [])]:
            text = (gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz"
                    else path.read_text())
            for r in json.loads(text):
                self.runs[record_key(r)] = r
                if path == out:
                    self.mine.append(r)

    def add(self, r: dict) -> None:
        self.runs[record_key(r)] = r
        self.mine.append(r)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.out.with_suffix(f".{os.getpid()}.tmp")
            text = "[\n" + ",\n".join(json.dumps(x) for x in self.mine) + "\n]\n"
            if self.out.suffix == ".gz":
                tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
            else:
                tmp.write_text(text)
            os.replace(tmp, self.out)

    def get(self, k: Key) -> dict | None:
        return self.runs.get(k)


def baselines(space: SearchSpace) -> list[tuple[str, Candidate]]:
    """The uniform baselines, named by their activation."""
    out = []
    for params in uniform_candidates(space):
        candidate = candidate_from_params(params, space)
        out.append((candidate.layout.layers[0].activation, candidate))
    return out


class DataCache:
    def __init__(self, device: torch.device) -> None:
        self.device, self.cache = device, {}

    def __call__(self, space: SearchSpace, seed: int) -> DeviceData:
        k = (space.data, seed)
        if k not in self.cache:
            self.cache[k] = to_device(load_data(space.data, seed), self.device)
        return self.cache[k]


def train(space: SearchSpace, activation: str, candidate: Candidate, recipe: Recipe, seed: int,
          data: DeviceData, device: torch.device) -> dict:
    """One run, as a search trains a trial; test accuracy of the model after its last epoch."""
    torch.manual_seed(seed)
    model = build_model(space.model, candidate.layout, data.input_shape, data.n_classes,
                        candidate.norm).to(device)
    result = fit(model, data, recipe, seed)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    last = result.history[-1]
    best = max(result.history, key=lambda h: h.val_acc)
    return {
        "space": space.name, "act": activation, "opt": recipe.optimizer, "lr": recipe.lr,
        "epochs": recipe.epochs, "wd": recipe.weight_decay, "bs": recipe.batch_size,
        "sched": recipe.schedule, "seed": seed, "status": result.status,
        "val_acc": round(last.val_acc, 5),
        "val_loss": round(last.val_loss, 5) if math.isfinite(last.val_loss) else None,
        "test_acc": round(test_acc, 5),
        "test_loss": round(test_loss, 5) if math.isfinite(test_loss) else None,
        "best_val_epoch": best.epoch,  # where the validation accuracy peaked
        "train_s": round(result.train_seconds, 3),
    }


def grid(args: argparse.Namespace, shipped_wd: float) -> list[Config]:
    lr_x, epochs_x, wds = GRIDS[args.grid]
    lr_x = args.lr_x or lr_x
    epochs_x = args.epochs_x or epochs_x
    wds = args.wd if args.wd is not None else wds
    configs = [Config(a, b, c) for b in epochs_x for a in lr_x for c in wds]
    shipped = Config(1.0, 1.0, shipped_wd)
    return [shipped, *[c for c in configs if c != shipped]]


def summary(results: Results, space: SearchSpace, activation: str, shipped: Recipe,
            config: Config, seeds: list[int]) -> dict | None:
    """Mean/std over the seeds that have run; None when none has."""
    recipe = config.recipe(shipped)
    runs = [results.get(key(space.name, activation, recipe, s)) for s in seeds]
    runs = [r for r in runs if r is not None]
    if not runs:
        return None

    def stats(name: str) -> tuple[float, float]:
        values = [r[name] for r in runs]
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    val, val_sd = stats("val_acc")
    test, test_sd = stats("test_acc")
    return {"config": config, "recipe": recipe, "n": len(runs), "val": val, "val_sd": val_sd,
            "test": test, "test_sd": test_sd,
            "train_s": statistics.fmean(r["train_s"] for r in runs),
            "diverged": sum(r["status"] == "diverged" for r in runs),
            "best_val_epoch": statistics.median(r["best_val_epoch"] for r in runs)}


def measured(results: Results, space: SearchSpace, activations: list[str], shipped: Recipe,
             configs: list[Config]) -> list[Config]:
    """The grid's recipes and any other the results hold for the space (an earlier run's
    ``--lr-x``/``--epochs-x``/``--wd``), the shipped one first, then by epochs, lr, decay."""
    # One config per recipe: a ratio read back from a run (unrounded, so that it gives the
    # run's learning rate again) may differ from a grid multiplier in the last bit.
    def recipe_key(c: Config) -> Key:
        return key(space.name, "", c.recipe(shipped), 0)

    found = {recipe_key(c): c for c in reversed(configs)}
    for r in results.runs.values():
        if (r["space"] == space.name and r["act"] in activations and r["opt"] == shipped.optimizer
                and r["bs"] == shipped.batch_size and r["sched"] == shipped.schedule):
            c = Config(r["lr"] / shipped.lr, r["epochs"] / shipped.epochs, r["wd"])
            found.setdefault(recipe_key(c), c)
    rest = sorted(set(found.values()) - {configs[0]}, key=lambda c: (c.epochs_x, c.lr_x, c.wd))
    return [configs[0], *rest]


def describe(recipe: Recipe) -> str:
    return f"lr {recipe.lr:.3g}, {recipe.epochs} ep, wd {recipe.weight_decay:g}"


def run_config(space: SearchSpace, activation: str, candidate: Candidate, shipped: Recipe,
               config: Config, seeds: list[int], results: Results, data: DataCache,
               device: torch.device) -> None:
    """Train the seeds a recipe lacks; print its figures when any was trained."""
    recipe = config.recipe(shipped)
    trained = 0
    for seed in seeds:
        if results.get(key(space.name, activation, recipe, seed)) is None:
            results.add(train(space, activation, candidate, recipe, seed, data(space, seed),
                              device))
            trained += 1
    if trained:
        s = summary(results, space, activation, shipped, config, seeds)
        print(f"  {space.name:<16} {activation:<5} {describe(recipe):<30} n={s['n']}  "
              f"val {s['val']:.4f}  test {s['test']:.4f} +- {s['test_sd']:.4f}  "
              f"peak val at ep {s['best_val_epoch']:g}  {s['train_s']:.2f} s/run"
              + (f"  diverged {s['diverged']}" if s["diverged"] else ""), flush=True)


def run_space(space: SearchSpace, args: argparse.Namespace, results: Results,
              data: DataCache, device: torch.device) -> None:
    """Train what is missing, printing each recipe's figures as its seeds finish."""
    seeds = list(range(args.seeds))
    screen = seeds[:args.screen] if 0 < args.screen < args.seeds else seeds
    for activation, candidate in baselines(space):
        shipped = recipe_for(space, candidate)
        configs = grid(args, shipped.weight_decay)
        common = (space, activation, candidate, shipped)
        for config in configs:
            run_config(*common, config, screen, results, data, device)
        if screen != seeds:
            ranked = sorted(configs[1:], key=lambda c: -summary(
                results, space, activation, shipped, c, screen)["val"])
            for config in [configs[0], *ranked[:args.keep]]:
                run_config(*common, config, seeds, results, data, device)


def report(spaces: list[SearchSpace], args: argparse.Namespace, results: Results) -> None:
    seeds = list(range(args.seeds))
    rows, grids = [], []
    for space in spaces:
        per_act = {}
        named = baselines(space)
        for activation, candidate in named:
            shipped = recipe_for(space, candidate)
            configs = measured(results, space, [a for a, _ in named], shipped,
                               grid(args, shipped.weight_decay))
            sums = {c: summary(results, space, activation, shipped, c, seeds) for c in configs}
            sums = {c: s for c, s in sums.items() if s is not None}
            per_act[activation] = (shipped, sums)
            ship = sums.get(configs[0])
            full = [s for s in sums.values() if s["n"] == len(seeds)]
            if ship is None or not full:
                continue
            # Best mean validation accuracy; of equals, the cheaper.
            ref = max(full, key=lambda s: (s["val"], -s["recipe"].epochs))
            rows.append((space, activation, ship, ref))
        grids.append((space, per_act))

    print()
    print(f"{'space':<17}{'act':<6}{'shipped recipe':<28}{'shipped test':<17}"
          f"{'reference (val-chosen)':<28}{'ref test':<17}{'diff':>6}  within 2  published")
    for space, activation, ship, ref in rows:
        diff = 100 * (ref["test"] - ship["test"])
        published = PUBLISHED.get(space.model.family) if space.data.name == "mnist1d" else None
        print(f"{space.name:<17}{activation:<6}{describe(ship['recipe']):<28}"
              f"{ship['test']:.4f} +- {ship['test_sd']:.4f}  {describe(ref['recipe']):<28}"
              f"{ref['test']:.4f} +- {ref['test_sd']:.4f}  {diff:+5.1f}  "
              f"{'yes' if diff <= 100 * WITHIN else 'NO ':<8}  "
              f"{'' if published is None else f'{published:.2f}'}")
    print(f"({len(seeds)} seeds; reference: the best mean validation accuracy of the recipes "
          f"measured; diff = reference - shipped, test accuracy points)")
    if any(s.data.name == "mnist1d" for s in spaces):
        print(PUBLISHED_NOTE)

    ref_of = {(sp.name, act): ref for sp, act, _, ref in rows}
    for space, per_act in grids:
        acts = list(per_act)
        if not acts:
            continue
        shipped0 = per_act[acts[0]][0]
        configs = measured(results, space, acts, shipped0, grid(args, shipped0.weight_decay))
        print(f"\n{space.name}: mean val / test accuracy per recipe (n = seeds run; "
              f"* = reference; cost = epochs vs the shipped recipe, mean train seconds a run)")
        print(f"  {'recipe':<30}" + "".join(f"{a + ' (n)':<22}" for a in acts) + "cost")
        base_s = [per_act[a][1][configs[0]]["train_s"] for a in acts
                  if configs[0] in per_act[a][1]]
        base = statistics.fmean(base_s) if base_s else float("nan")
        feasible = []
        for config in configs:
            cells, times, ok = [], [], True
            for a in acts:
                s = per_act[a][1].get(config)
                if s is None:
                    cells.append(f"{'-':<22}")
                    ok = False
                    continue
                star = "*" if ref_of.get((space.name, a)) is s else " "
                cells.append(f"{s['val']:.3f} / {s['test']:.3f}{star}({s['n']})".ljust(22))
                times.append(s["train_s"])
                ref = ref_of.get((space.name, a))
                if ref is None or s["test"] < ref["test"] - WITHIN:
                    ok = False
            rel = statistics.fmean(times) / base if times else float("nan")
            recipe = config.recipe(shipped0)
            mean_s = statistics.fmean(times) if times else float("nan")
            print(f"  {describe(recipe):<30}" + "".join(cells)
                  + f"x{recipe.epochs / shipped0.epochs:g} ({mean_s:.2f} s)")
            if ok:
                n = min(per_act[a][1][config]["n"] for a in acts)
                feasible.append((recipe.epochs, config.changes(shipped0), config, rel, n))
        full = [f for f in feasible if f[4] == len(seeds)]
        for label, among in (("", full), (" on the screening seeds only", feasible)):
            if not among or (label and full and min(among, key=lambda f: f[:2]) in full):
                continue
            epochs, _, config, rel, n = min(among, key=lambda f: f[:2])
            accs = ", ".join(f"{a} {per_act[a][1][config]['test']:.4f}" for a in acts)
            print(f"  cheapest recipe within 2 points of every reference{label}: "
                  f"{describe(config.recipe(shipped0))} ({n} seeds; {accs}; "
                  f"cost x{epochs / shipped0.epochs:g} in epochs, measured train time "
                  f"x{rel:.2f})")
        if not feasible:
            print("  no recipe measured is within 2 points of every reference")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", action="append", help="a space's name or file (repeatable; "
                   "default: every shipped space)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--grid", choices=tuple(GRIDS), default="full")
    p.add_argument("--lr-x", type=float, nargs="+", help="lr multipliers (replaces the grid's)")
    p.add_argument("--epochs-x", type=float, nargs="+", help="epoch multipliers")
    p.add_argument("--wd", type=float, nargs="+", help="weight decays")
    p.add_argument("--screen", type=int, default=0, help="train every recipe on this many "
                   "seeds only, then the --keep best (by validation) on all (default 0: off)")
    p.add_argument("--keep", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", type=Path, help="save every run here; resume from it")
    p.add_argument("--load", type=Path, action="append", default=[],
                   help="runs of another file to reuse (read only; repeatable)")
    p.add_argument("--report-only", action="store_true", help="train nothing; print the tables "
                   "from --json/--load")
    args = p.parse_args(argv)
    if args.seeds < 2:
        p.error("--seeds: at least 2 (a standard deviation)")

    device = select_device(args.device)
    threads = configure_threads(device) if device.type == "cpu" else None
    spaces = ([load_space(s) for s in args.space] if args.space else list_shipped_spaces())
    results = Results(args.json, args.load)
    lr_x, epochs_x, wds = GRIDS[args.grid]
    recipes = ("recipes: every one the loaded runs hold" if args.report_only else
               f"grid lr x {args.lr_x or lr_x}, epochs x {args.epochs_x or epochs_x}, "
               f"wd {args.wd or wds}")
    print(f"spaces {', '.join(s.name for s in spaces)}; {args.seeds} seeds; {recipes}"
          f"{f'; screened on {args.screen} seeds, {args.keep} kept' if args.screen else ''}; "
          f"device {device}{f', {threads} thread' if threads else ''}; torch {torch.__version__}",
          flush=True)
    started = time.perf_counter()
    if not args.report_only:
        data = DataCache(device)
        for space in spaces:
            run_space(space, args, results, data, device)
    report(spaces, args, results)
    print(f"\n{time.perf_counter() - started:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
