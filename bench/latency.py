"""Inference latency of the ReLU, ELU and SELU versions of one model, side by side.

For each activation and batch size it prints the median latency (over repeated
measurements, each the median of its timed blocks: ``actsearch.training.probes``), the typical
interquartile range within one measurement, the coefficient of variation (CV = std / mean) of
the repeated measurements of the same model, and the latency relative to ReLU with its CV.

Every measurement is ``compare_latency(model, reference)``: its blocks alternate with those of
a second, identical copy of the ReLU model, and the ratio is taken pair by pair. A machine's
speed drifts over seconds (shared hosts, frequency scaling) by tens of percent: absolute
latencies carry that drift, paired ratios cancel it. The ReLU row's ratio is an A/A test (the
same network against its copy): it should read 1.00, and its CV is the floor of the method.

    python bench/latency.py                      # MLP 40-100-100-100-10, batch 1 and 4096
    python bench/latency.py --device cuda --repeats 10

The goal for the CV is under 5% on an idle machine; a busy one (another search running)
shows up here first.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import torch

from actsearch.models.build import build_model
from actsearch.models.layout import parse_layout
from actsearch.schema.space import ModelSpec
from actsearch.training.fit import configure_threads, select_device
from actsearch.training.probes import compare_latency

ACTIVATIONS = ("relu", "elu", "selu")
CV_GOAL = 0.05


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4096])
    p.add_argument("--repeats", type=int, default=7, help="measurements per model and batch")
    p.add_argument("--blocks", type=int, default=20, help="timed blocks per measurement")
    p.add_argument("--block-seconds", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--inputs", type=int, default=40)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.3f} ms"


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    """Measure and print; returns 0 (the figures are the result, not a pass/fail)."""
    args = _parse(argv)
    device = select_device(args.device)
    threads = configure_threads(device, args.threads)
    arch = ModelSpec(width=args.width, depth=args.depth)
    models = {}
    for act in ACTIVATIONS:
        torch.manual_seed(args.seed)  # the same draw for each, up to each init's scale
        layout = parse_layout(" | ".join([act] * args.depth))
        models[act] = build_model(arch, layout, (args.inputs,), args.classes).to(device)
    reference = copy.deepcopy(models["relu"])
    x = torch.randn(256, args.inputs, generator=torch.Generator().manual_seed(args.seed))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"MLP {args.inputs}-{'-'.join([str(args.width)] * args.depth)}-{args.classes}, "
          f"device {device} ({name}), torch {torch.__version__}, {threads} thread(s), "
          f"{args.repeats} measurements x {args.blocks} blocks each")

    medians: dict[tuple[str, int], list[float]] = {}
    iqrs: dict[tuple[str, int], list[float]] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    # Interleaved: each round measures every model at every batch size once. Round 0 is a
    # warm-up and is not recorded: the first passes fill caches and settle the clock.
    for round_ in range(args.repeats + 1):
        for batch in args.batch_sizes:
            for act, model in models.items():
                c = compare_latency(model, reference, x, batch, device, blocks=args.blocks,
                                    block_seconds=args.block_seconds)
                if round_ == 0:
                    continue
                medians.setdefault((act, batch), []).append(c.model.median_s)
                iqrs.setdefault((act, batch), []).append(c.model.iqr_s)
                ratios.setdefault((act, batch), []).append(c.ratio)

    print(f"\n{'activation':<10} {'batch':>6} {'median':>11} {'IQR':>11} {'per sample':>11} "
          f"{'CV':>6} {'vs relu':>8} {'CV':>6}")
    worst = worst_ratio = 0.0
    for batch in args.batch_sizes:
        for act in ACTIVATIONS:
            key = (act, batch)
            med, cv = statistics.median(medians[key]), _cv(medians[key])
            ratio, ratio_cv = statistics.median(ratios[key]), _cv(ratios[key])
            worst, worst_ratio = max(worst, cv), max(worst_ratio, ratio_cv)
            print(f"{act:<10} {batch:>6} {_fmt(med):>11} {_fmt(statistics.median(iqrs[key])):>11} "
                  f"{_fmt(med / batch):>11} {100 * cv:5.1f}% {ratio:7.3f}x {100 * ratio_cv:5.1f}%")
    for label, value in (("absolute latency", worst), ("latency vs relu", worst_ratio)):
        verdict = "within" if value < CV_GOAL else "ABOVE"
        print(f"worst CV of {label}: {100 * value:.1f}% ({verdict} the "
              f"{100 * CV_GOAL:.0f}% goal for an idle machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
