"""Measurements of a trained model: speed (latency, speed of convergence) and stability
(activation statistics, dead units, gradient flow, divergence, robustness).

Every function states its exact definition in its docstring; ``measure_all`` runs them all and
returns plain JSON values for Optuna user attributes, under the names of ``METRICS``.

All probes run the model in eval mode (dropout off, batch norm on its running statistics), so
a measurement is deterministic for a given model and probe batch, and restore the mode after.
They never touch the parameters' ``.grad``. This module knows nothing of Optuna.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from actsearch.models.activations import create_activation
from actsearch.models.build import hidden_activations
from actsearch.models.sites import site_tensors
from actsearch.schema.space import NOT_MEASURED
from actsearch.training.data import DeviceData
from actsearch.training.fit import CLASSIFICATION, FitResult, Scoring

__all__ = [
    "probe_model",
    "DEAD_EPS",
    "METRICS",
    "ActivationStats",
    "ConvergenceSpeed",
    "Divergence",
    "GradientFlow",
    "Latency",
    "LatencyComparison",
    "Robustness",
    "SiteStats",
    "activation_stats",
    "compare_latency",
    "convergence_speed",
    "divergence",
    "gradient_flow",
    "measure_all",
    "measure_latency",
    "robustness",
    "site_stats",
]

# A unit counts as dead when |d act / d input| is below this on every probe sample: a ReLU that
# never fires (derivative exactly 0), an ELU/SELU below about -14 (alpha * exp(x) < 1e-6).
DEAD_EPS = 1e-6

# The names ``measure_all`` returns (user attribute names), with their definitions, which the
# docs' measurements page shows; the names are stable, so studies stay comparable across
# versions.
METRICS: dict[str, str] = {
    "lat_b1_ms": "inference latency at batch 1: median over timed blocks, milliseconds",
    "lat_b1_iqr_ms": "interquartile range of those blocks, milliseconds",
    "lat_b1_rel": "batch-1 latency / a reference model's, timed in alternating blocks",
    "lat_big_ms": "inference latency at batch `lat_big_batch`: median over blocks, ms",
    "lat_big_iqr_ms": "interquartile range of those blocks, milliseconds",
    "lat_big_rel": "large-batch latency / the reference model's, alternating blocks",
    "lat_big_batch": "the large batch size used (4096 unless changed)",
    "epochs_to_95": "first epoch (1-based) whose val accuracy is >= 95% of the last epoch's",
    "val_loss_auc": "area under the val-loss curve: mean val loss over the epochs run",
    "act_mean": "per hidden layer (site): mean of the activation outputs on the probe batch",
    "act_std": "per hidden layer (site): std of the activation outputs on the probe batch",
    "dead_frac": "per hidden layer (site): share of units with abs(act') < 1e-6 on every "
                 "probe sample",
    "dead_frac_max": "the largest per-layer (per-site) dead fraction",
    "grad_norm": "per hidden layer: L2 norm of d(loss)/d(weight) of the layer feeding it; "
                 "per site: L2 norm of d(loss)/d(site's output)",
    "grad_ratio": "grad_norm of the first hidden layer (site) / that of the last (<<1: "
                  "vanishing)",
    "nonfinite": "true when any train loss is NaN or infinite",
    "loss_spikes": "epochs whose train loss exceeds 2x the minimum of the epochs before",
    "max_spike": "largest train loss / running minimum of the epochs before (<= 1: never rose)",
    "robust_noise_0.1": "val acc with N(0, 0.1^2) noise added to the inputs / clean val acc",
    "robust_noise_0.3": "val acc with N(0, 0.3^2) noise added to the inputs / clean val acc",
    "robust_scale_1.5": "val acc with the inputs multiplied by 1.5 / clean val acc",
}
# Measured on accuracy: with a metric of the user's own (train.metric) they are None, and the
# probes say why under NOT_MEASURED.
ACCURACY_PROBES = ("epochs_to_95", "robust_noise_0.1", "robust_noise_0.3", "robust_scale_1.5")

_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- speed


@dataclass(frozen=True)
class Latency:
    """Inference latency of one forward pass at one batch size.

    Attributes:
        batch_size: Samples per forward pass.
        median_s: Median over the timed blocks of the mean seconds per forward pass.
        q1_s, q3_s: First and third quartiles of the same blocks.
        blocks: How many blocks were timed.
        calls_per_block: Forward passes per block.
        threads: torch's CPU thread count during the measurement.
        device: Where the model ran.
    """

    batch_size: int
    median_s: float
    q1_s: float
    q3_s: float
    blocks: int
    calls_per_block: int
    threads: int
    device: str

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s

    @property
    def per_sample_s(self) -> float:
        return self.median_s / self.batch_size


def _synchronizer(device: torch.device) -> Callable[[], None]:
    # Kernels on an accelerator run asynchronously: without a sync the clock would time only
    # the launches. On the CPU there is nothing to wait for.
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _batch_of(x: torch.Tensor, batch_size: int) -> torch.Tensor:
    # Real samples, tiled: timing a model on its own data keeps value-dependent costs honest
    # (e.g. denormals in exp), unlike zeros.
    if len(x) == 0:
        raise ValueError("need at least one example sample to time the model")
    reps = math.ceil(batch_size / len(x))
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:batch_size].contiguous()


def _quartiles(times: list[float]) -> tuple[float, float, float]:
    if len(times) == 1:
        return times[0], times[0], times[0]
    q1, med, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, med, q3


def _time_blocks(models: Sequence[nn.Module], example: torch.Tensor, batch_size: int,
                 device: torch.device | str | None, blocks: int, block_seconds: float,
                 warmup: int) -> tuple[list[list[float]], list[int], torch.device]:
    """Seconds per pass of each model in ``blocks`` blocks, the models' blocks alternating."""
    if batch_size < 1 or blocks < 1 or warmup < 0 or block_seconds < 0:
        raise ValueError("batch_size and blocks must be >= 1, warmup and block_seconds >= 0")
    if device is None:
        device = next(models[0].parameters()).device
    device = torch.device(device)
    x = _batch_of(example.to(device), batch_size)
    sync = _synchronizer(device)
    times: list[list[float]] = [[] for _ in models]
    calls: list[int] = []
    with contextlib.ExitStack() as stack:
        for model in models:
            stack.enter_context(_eval_mode(model))
        stack.enter_context(torch.inference_mode())
        for model in models:
            for _ in range(warmup):
                model(x)
            sync()
            started = time.perf_counter()
            model(x)
            sync()
            one = max(time.perf_counter() - started, 1e-7)
            calls.append(max(1, math.ceil(block_seconds / one)))
        for _ in range(blocks):
            for model, n, out in zip(models, calls, times, strict=True):
                sync()
                started = time.perf_counter()
                for _ in range(n):
                    model(x)
                sync()
                out.append((time.perf_counter() - started) / n)
    return times, calls, device


def _latency(times: list[float], batch_size: int, calls: int, device: torch.device) -> Latency:
    q1, med, q3 = _quartiles(times)
    return Latency(batch_size, med, q1, q3, len(times), calls, torch.get_num_threads(),
                   str(device))


def measure_latency(model: nn.Module, example: torch.Tensor, batch_size: int,
                    device: torch.device | str | None = None, *, blocks: int = 20,
                    block_seconds: float = 0.01, warmup: int = 3) -> Latency:
    """Time a forward pass of ``model`` (eval mode, ``torch.inference_mode``).

    Definition: the inputs are ``example``'s samples tiled to ``batch_size``. After ``warmup``
    untimed passes and one calibration pass, ``blocks`` blocks of ``n`` back-to-back passes
    are timed, ``n`` chosen so a block lasts about ``block_seconds`` (so the clock's own cost
    is negligible at batch 1); each block gives seconds per pass, and the result is the median
    and quartiles of these. On CUDA the device is synchronised before and after each block.
    Runs on torch's current thread count. Total cost is about
    ``blocks * max(block_seconds, one pass)``.

    Args:
        model: The network, already on ``device``.
        example: One or more input samples (any number; they are tiled or cut).
        batch_size: Samples per forward pass.
        device: Where to run; defaults to the device of the model's first parameter.
        blocks: Timed blocks (repeats); more gives steadier quartiles.
        block_seconds: Target duration of one block.
        warmup: Untimed passes first (allocator, caches, lazy CUDA init).
    """
    (times,), (calls,), dev = _time_blocks([model], example, batch_size, device, blocks,
                                           block_seconds, warmup)
    return _latency(times, batch_size, calls, dev)


@dataclass(frozen=True)
class LatencyComparison:
    """A model's latency against a reference's, timed in alternating blocks."""

    model: Latency
    reference: Latency
    ratio: float  # median over block pairs of model time / reference time
    ratio_q1: float
    ratio_q3: float
    pair_ratios: tuple[float, ...]  # each block pair's ratio, in time order


def compare_latency(model: nn.Module, reference: nn.Module, example: torch.Tensor,
                    batch_size: int, device: torch.device | str | None = None, *,
                    blocks: int = 20, block_seconds: float = 0.01,
                    warmup: int = 3) -> LatencyComparison:
    """Latency of ``model`` relative to ``reference``, robust to the machine's speed changing.

    Definition: as ``measure_latency`` for both models, but their blocks alternate (model,
    reference, model, ...) and ``ratio`` is the median over the ``blocks`` pairs of (model's
    seconds per pass / reference's). A shared or throttled machine changes speed over
    seconds, by tens of percent; both blocks of a pair see the same speed, so the ratio stays
    steady where absolute latencies do not (see bench/latency.py). Costs twice as much.
    """
    (mt, rt), (mc, rc), dev = _time_blocks([model, reference], example, batch_size, device,
                                           blocks, block_seconds, warmup)
    ratios = tuple(a / b for a, b in zip(mt, rt, strict=True))
    q1, med, q3 = _quartiles(list(ratios))
    return LatencyComparison(_latency(mt, batch_size, mc, dev), _latency(rt, batch_size, rc, dev),
                             med, q1, q3, ratios)


@dataclass(frozen=True)
class ConvergenceSpeed:
    """How fast a run converged (see ``convergence_speed``); whether it had converged by the
    end is the analysis's convergence check (``actsearch.analysis.convergence_checks``)."""

    epochs_to_target: int | None  # 1-based; None for an empty or non-finite curve
    val_loss_auc: float  # nan for an empty curve, inf when any loss is non-finite


def convergence_speed(val_acc_curve: Sequence[float], val_loss_curve: Sequence[float],
                      fraction: float = 0.95) -> ConvergenceSpeed:
    """Convergence speed from per-epoch validation curves.

    Definitions: ``epochs_to_target`` is the first epoch (1-based) whose validation accuracy
    is at least ``fraction`` times the last epoch's; ``val_loss_auc`` is the area under the
    validation-loss curve with unit epoch spacing, normalised by the epoch count, i.e. the
    mean validation loss over the epochs. Both are relative to the run's own length: compare
    them between runs of the same number of epochs (complete trials), not pruned ones.
    """
    epochs: int | None = None
    if val_acc_curve and math.isfinite(val_acc_curve[-1]):
        target = fraction * val_acc_curve[-1]
        epochs = next(i for i, a in enumerate(val_acc_curve, 1) if a >= target)
    if not val_loss_curve:
        auc = math.nan
    elif all(math.isfinite(v) for v in val_loss_curve):
        auc = math.fsum(val_loss_curve) / len(val_loss_curve)
    else:
        auc = math.inf
    return ConvergenceSpeed(epochs, auc)


# --------------------------------------------------------------------------- stability


@dataclass(frozen=True)
class ActivationStats:
    """One hidden activation on the probe batch (see ``activation_stats``)."""

    layer: int  # 0-based, input side first
    name: str  # the torch class, e.g. ReLU
    mean: float
    std: float
    dead_fraction: float
    units: int


def _derivative(act: nn.Module, pre: torch.Tensor) -> torch.Tensor:
    # The activations are elementwise, so the gradient of sum(act(x)) is exactly act'(x) at
    # every element, whatever the module (ELU's alpha, SELU's scale included).
    with torch.enable_grad():
        x = pre.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(act(x).sum(), x)
    return grad


@torch.no_grad()
def activation_stats(model: nn.Module, x_probe: torch.Tensor,
                     eps: float = DEAD_EPS) -> list[ActivationStats]:
    """Per hidden layer statistics of the activation outputs on a fixed probe batch.

    Definitions (one forward pass in eval mode, forward hooks on ``hidden_activations``):
    ``mean`` and ``std`` are the mean and the population standard deviation of all output
    elements of the layer (every sample, unit and position). A unit is a feature of an MLP
    layer or a channel of a convolution (axis 1); it is dead when the derivative of the
    activation at its input is below ``eps`` in absolute value for every probe sample and
    every position; ``dead_fraction`` is dead units / units.
    """
    acts = hidden_activations(model)
    captured: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(acts)

    def hook(i: int) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            captured[i] = (inputs[0].detach(), out.detach())
        return record

    handles = [a.register_forward_hook(hook(i)) for i, a in enumerate(acts)]
    try:
        with _eval_mode(model):
            model(x_probe)
    finally:
        for h in handles:
            h.remove()
    result = []
    for i, (act, seen) in enumerate(zip(acts, captured, strict=True)):
        if seen is None:  # a module the forward pass skipped: nothing to say about it
            result.append(ActivationStats(i, type(act).__name__, math.nan, math.nan, math.nan,
                                          0))
            continue
        pre, out = seen
        out64 = out.double()
        alive = _derivative(act, pre).abs() >= eps
        # Reduce every axis but the unit axis: a unit is dead only if dead everywhere.
        per_unit = alive.transpose(0, 1).reshape(alive.shape[1], -1).any(dim=1)
        units = per_unit.numel()
        result.append(ActivationStats(
            i, type(act).__name__, out64.mean().item(), out64.std(correction=0).item(),
            1.0 - per_unit.sum().item() / units, units))
    return result


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms of the hidden layers' weights (see ``gradient_flow``)."""

    norms: list[float]  # per hidden layer, input side first
    loss: float

    @property
    def ratio(self) -> float:
        """First layer's norm / last layer's; nan without layers, inf if the last is 0."""
        if not self.norms:
            return math.nan
        first, last = self.norms[0], self.norms[-1]
        if last == 0:
            return math.nan if first == 0 else math.inf
        return first / last


def _hidden_weight_layers(model: nn.Module) -> list[nn.Module]:
    # The weight layer feeding each hidden activation is the last Linear/Conv before it in
    # module order (norm and dropout layers may sit between them).
    hidden = {id(a) for a in hidden_activations(model)}
    layers: list[nn.Module] = []
    last: nn.Module | None = None
    for m in model.modules():
        if isinstance(m, _WEIGHT_LAYERS):
            last = m
        elif id(m) in hidden and last is not None:
            layers.append(last)
            last = None
    return layers


def gradient_flow(model: nn.Module, x_probe: torch.Tensor, y_probe: torch.Tensor,
                  loss_fn: Callable[..., torch.Tensor] = F.cross_entropy) -> GradientFlow:
    """Gradient norms of each hidden layer's weights after one backward pass.

    Definition: the loss is the mean cross-entropy (or ``loss_fn``, a space's train.loss) of
    the model (eval mode) on the probe batch; each norm is the L2 (Frobenius) norm of
    d(loss)/d(weight) of the Linear or Conv layer that feeds one hidden activation (biases
    excluded). ``ratio`` is first / last: near 1 is healthy, far below 1 means vanishing
    gradients towards the input, far above 1 exploding ones. Computed with
    ``torch.autograd.grad``, so ``.grad`` is left untouched.
    """
    # Tensors made under inference_mode cannot be saved for backward; clones can.
    x_probe = x_probe.clone() if x_probe.is_inference() else x_probe
    y_probe = y_probe.clone() if y_probe.is_inference() else y_probe
    layers = _hidden_weight_layers(model)
    weights = [layer.weight for layer in layers]
    with _eval_mode(model), torch.enable_grad():
        loss = loss_fn(model(x_probe), y_probe)
        trainable = [w for w in weights if w.requires_grad]
        grads = iter(torch.autograd.grad(loss, trainable, allow_unused=True)
                     if trainable else [])
        norms = []
        for w in weights:
            g = next(grads) if w.requires_grad else None
            norms.append(0.0 if g is None else g.double().norm().item())
    return GradientFlow(norms, loss.item())


@dataclass(frozen=True)
class SiteStats:
    """One site of a factory model on the probe batch (see ``site_stats``)."""

    site: str  # its name, as find_sites gives it
    mean: float
    std: float
    dead_fraction: float
    units: int
    grad_norm: float


def site_stats(model: nn.Module, x_probe: torch.Tensor, y_probe: torch.Tensor,
               eps: float = DEAD_EPS,
               loss_fn: Callable[..., torch.Tensor] = F.cross_entropy) -> list[SiteStats]:
    """Per-site statistics of a model's activation sites, in execution order.

    The same definitions as ``activation_stats`` (mean, std, dead units, a unit being axis
    1), measured at each site ``find_sites`` names (a module, one call of a shared module, a
    functional call), in one forward pass in eval mode (``models.sites.site_tensors``); a
    site run several times counts each call's units apart. ``grad_norm`` is the L2 norm of
    d(mean cross-entropy, or ``loss_fn``, on the probe batch)/d(the site's output): the
    gradient reaching
    the site, which needs no weight layer beside it, so it is defined at every site. Computed
    with ``torch.autograd.grad``, so ``.grad`` is left untouched.
    """
    x_probe = x_probe.clone() if x_probe.is_inference() else x_probe
    y_probe = y_probe.clone() if y_probe.is_inference() else y_probe
    with _eval_mode(model), torch.enable_grad():
        seen = site_tensors(model, x_probe)
        outputs = [out for calls in seen.calls.values() for *_, out in calls]
        loss = loss_fn(seen.output, y_probe)
        wanted = [o for o in outputs if o.requires_grad]
        grads = dict(zip(map(id, wanted), torch.autograd.grad(loss, wanted, allow_unused=True)
                         if wanted else [], strict=True))
    result = []
    for name, calls in seen.calls.items():
        outs = torch.cat([out.detach().double().reshape(-1) for *_, out in calls])
        dead = units = 0
        squares = 0.0
        for activation, param, pre, out in calls:
            alive = _derivative(create_activation(activation, param), pre).abs() >= eps
            per_unit = (alive.transpose(0, 1).reshape(alive.shape[1], -1).any(dim=1)
                        if alive.dim() > 1 else alive.reshape(1, -1).any(dim=1))
            units += per_unit.numel()
            dead += per_unit.numel() - int(per_unit.sum().item())
            grad = grads.get(id(out))
            squares += 0.0 if grad is None else grad.double().norm().item() ** 2
        result.append(SiteStats(name, outs.mean().item(), outs.std(correction=0).item(),
                                dead / units if units else math.nan, units,
                                math.sqrt(squares)))
    return result


@dataclass(frozen=True)
class Divergence:
    """Divergence signals of a training-loss curve (see ``divergence``)."""

    non_finite: bool
    first_non_finite_epoch: int | None  # 1-based
    spikes: int
    first_spike_epoch: int | None  # 1-based
    max_spike: float  # largest loss / running minimum; nan when undefined (< 2 finite epochs)


def divergence(train_loss_curve: Sequence[float], spike_factor: float = 2.0) -> Divergence:
    """Signs that training went unstable, from the per-epoch training losses.

    Definitions: ``non_finite`` when any loss is NaN or infinite. The running minimum at
    epoch e is the smallest finite loss of epochs 1..e-1; epoch e is a spike when its loss
    exceeds ``spike_factor`` times that minimum (epoch 1 never is; non-finite epochs are
    counted by ``non_finite``, not as spikes). ``max_spike`` is the largest loss / running
    minimum over epochs 2.. (below 1 while the loss keeps falling).
    """
    first_bad = next((i for i, v in enumerate(train_loss_curve, 1) if not math.isfinite(v)),
                     None)
    running = math.inf
    spikes, first_spike, max_spike = 0, None, math.nan
    for epoch, loss in enumerate(train_loss_curve, 1):
        if not math.isfinite(loss):
            continue
        if math.isfinite(running) and running > 0:
            ratio = loss / running
            max_spike = ratio if math.isnan(max_spike) else max(max_spike, ratio)
            if ratio > spike_factor:
                spikes += 1
                if first_spike is None:
                    first_spike = epoch
        running = min(running, loss)
    return Divergence(first_bad is not None, first_bad, spikes, first_spike, max_spike)


@dataclass(frozen=True)
class Robustness:
    """Validation accuracy under input perturbations (see ``robustness``)."""

    clean_acc: float
    noise: dict[float, float] = field(default_factory=dict)  # sigma -> relative accuracy
    scale: dict[float, float] = field(default_factory=dict)  # factor -> relative accuracy


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for i in range(0, len(x), batch_size):
        correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum()
    return correct.item() / max(len(x), 1)


def robustness(model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor,
               sigmas: Sequence[float] = (0.1, 0.3), scales: Sequence[float] = (1.5,),
               seed: int = 0, batch_size: int = 4096) -> Robustness:
    """Accuracy on perturbed validation inputs, relative to clean accuracy (eval mode).

    Definitions: for each sigma, ``x + sigma * N(0, 1)`` with noise drawn once from a
    generator seeded with ``seed`` (the same noise for every model, so models compare on
    equal terms); for each scale factor, ``x * factor``. Each entry is perturbed accuracy /
    clean accuracy (1.0: unaffected; nan when the clean accuracy is 0). Inputs are the
    standardised features, so sigma is in units of one feature's standard deviation.
    """
    with _eval_mode(model):
        clean = _accuracy(model, x_val, y_val, batch_size)

        def relative(acc: float) -> float:
            return acc / clean if clean > 0 else math.nan

        generator = torch.Generator(device=x_val.device).manual_seed(seed)
        noise = {}
        for sigma in sigmas:
            eps = torch.randn(x_val.shape, generator=generator, device=x_val.device,
                              dtype=x_val.dtype)
            noise[float(sigma)] = relative(_accuracy(model, x_val + sigma * eps, y_val,
                                                     batch_size))
        scale = {float(s): relative(_accuracy(model, x_val * s, y_val, batch_size))
                 for s in scales}
    return Robustness(clean, noise, scale)


# --------------------------------------------------------------------------- all at once


def _json(value: float | None) -> float | None:
    # Optuna stores user attributes as JSON: NaN and inf are not JSON, so they become null.
    # Six significant digits keep storage small and reports stable.
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def measure_all(model: nn.Module, x_probe: torch.Tensor, y_probe: torch.Tensor,
                x_val: torch.Tensor, y_val: torch.Tensor, device: torch.device | str, *,
                train_loss_curve: Sequence[float] | None = None,
                val_acc_curve: Sequence[float] | None = None,
                val_loss_curve: Sequence[float] | None = None,
                latency_blocks: int = 20, latency_block_seconds: float = 0.01,
                big_batch: int = 4096, reference: nn.Module | None = None,
                seed: int = 0, by_site: bool = False, scoring: Scoring = CLASSIFICATION,
                metric: str = "accuracy") -> dict[str, object]:
    """Every probe, as plain JSON values under the names of ``METRICS``.

    Every name is always present; a value that cannot be measured (a curve not given,
    latency switched off, no reference, a non-finite number) is None. The defaults take
    about 0.5 s for the default MLP on one CPU thread (twice that with a reference);
    ``latency_blocks=5, latency_block_seconds=0.002`` is the cheap mode (about 0.06 s),
    ``latency_blocks=0`` skips latency.

    Args:
        model: The trained network, already on ``device``.
        x_probe, y_probe: A fixed batch (e.g. the first 512 training samples) for activation
            statistics, dead units and gradients; its samples are also the latency inputs.
        x_val, y_val: The validation split, for robustness.
        device: Where the model runs.
        train_loss_curve, val_acc_curve, val_loss_curve: Per-epoch curves from training.
        latency_blocks, latency_block_seconds: Timing repeats (see ``measure_latency``).
        big_batch: The large batch size for latency.
        reference: A fixed model of the same architecture (e.g. uniform ReLU, built once per
            study, on ``device``); when given, ``lat_*_rel`` compare against it in
            alternating blocks (``compare_latency``), which cancels the machine's drift.
        seed: Seeds the robustness noise.
        by_site: Measure activations, dead units and gradients at the model's activation
            sites (``site_stats``: any ``nn.Module``, e.g. a factory model after
            ``apply_layout``); ``act_mean``, ``act_std``, ``dead_frac`` and ``grad_norm`` are
            then mappings from site name to value, input side first. Else per hidden layer of
            a shipped family's model (lists).
        scoring: The run's loss (the gradients' loss) and metric. With a metric of the
            user's own (named ``metric``), the probes that assume accuracy
            (``ACCURACY_PROBES``: robustness ratios, epochs to 95% accuracy) are None and
            ``NOT_MEASURED`` says so.
    """
    device = torch.device(device)
    x_probe, y_probe = x_probe.to(device), y_probe.to(device)
    x_val, y_val = x_val.to(device), y_val.to(device)
    out: dict[str, object] = {}

    for key, b in (("lat_b1", 1), ("lat_big", big_batch)):
        m: Latency | None = None
        ratio: float | None = None
        if latency_blocks > 0 and reference is not None:
            c = compare_latency(model, reference, x_probe, b, device, blocks=latency_blocks,
                                block_seconds=latency_block_seconds)
            m, ratio = c.model, c.ratio
        elif latency_blocks > 0:
            m = measure_latency(model, x_probe, b, device, blocks=latency_blocks,
                                block_seconds=latency_block_seconds)
        out[f"{key}_ms"] = _json(m.median_s * 1e3) if m else None
        out[f"{key}_iqr_ms"] = _json(m.iqr_s * 1e3) if m else None
        out[f"{key}_rel"] = _json(ratio)
    out["lat_big_batch"] = big_batch

    accuracy = scoring.metric is None
    speed = convergence_speed(val_acc_curve or [], val_loss_curve or [])
    out["epochs_to_95"] = speed.epochs_to_target if accuracy else None
    out["val_loss_auc"] = _json(speed.val_loss_auc)

    # The same keys in the same order either way: a shipped space's stored probes unchanged.
    if by_site:
        sites = site_stats(model, x_probe, y_probe, loss_fn=scoring.loss_fn)
        out["act_mean"] = {s.site: _json(s.mean) for s in sites}
        out["act_std"] = {s.site: _json(s.std) for s in sites}
        out["dead_frac"] = {s.site: _json(s.dead_fraction) for s in sites}
        dead = [s.dead_fraction for s in sites]
    else:
        stats = activation_stats(model, x_probe)
        out["act_mean"] = [_json(s.mean) for s in stats]
        out["act_std"] = [_json(s.std) for s in stats]
        out["dead_frac"] = [_json(s.dead_fraction) for s in stats]
        dead = [s.dead_fraction for s in stats]
    finite_dead = [d for d in dead if math.isfinite(d)]
    out["dead_frac_max"] = _json(max(finite_dead)) if finite_dead else None

    if by_site:
        flow = GradientFlow([s.grad_norm for s in sites], math.nan)
        out["grad_norm"] = {s.site: _json(s.grad_norm) for s in sites}
    else:
        flow = gradient_flow(model, x_probe, y_probe, scoring.loss_fn)
        out["grad_norm"] = [_json(n) for n in flow.norms]
    out["grad_ratio"] = _json(flow.ratio)

    if train_loss_curve is not None:
        div = divergence(train_loss_curve)
        out["nonfinite"] = div.non_finite
        out["loss_spikes"] = div.spikes
        out["max_spike"] = _json(div.max_spike)
    else:
        out["nonfinite"] = out["loss_spikes"] = out["max_spike"] = None

    if not accuracy:
        for name in ACCURACY_PROBES[1:]:
            out[name] = None
        out[NOT_MEASURED] = (f"{', '.join(ACCURACY_PROBES)}: they measure accuracy, and this "
                             f"study's metric is {metric}")
        return out
    rob = robustness(model, x_val, y_val, sigmas=(0.1, 0.3), scales=(1.5,), seed=seed)
    for sigma, value in rob.noise.items():
        out[f"robust_noise_{sigma:g}"] = _json(value)
    for factor, value in rob.scale.items():
        out[f"robust_scale_{factor:g}"] = _json(value)
    return out


_PROBE_BATCH = 512  # the first training samples: a fixed batch for the stability probes


def probe_model(model: torch.nn.Module, data: DeviceData, device: torch.device | str,
                result: FitResult, reference: torch.nn.Module | None = None,
                by_site: bool = False, scoring: Scoring = CLASSIFICATION,
                metric: str = "accuracy") -> dict[str, object]:
    """A trained model's speed and stability probes (``actsearch.probes.METRICS``);
    ``by_site`` for a factory model, ``scoring`` and ``metric`` as ``measure_all``'s. With
    DataLoaders, the probe batch and the robustness inputs are the training and validation
    loaders' first batches."""
    n = min(_PROBE_BATCH, len(data.x_train))
    history = result.history
    return measure_all(
        model, data.x_train[:n], data.y_train[:n], data.x_val, data.y_val, device,
        train_loss_curve=[h.train_loss for h in history],
        val_acc_curve=[h.val_acc for h in history],
        val_loss_curve=[h.val_loss for h in history],
        # The cheap mode (about 0.03 s for the default MLP on a CPU): bench/latency.py
        # measures at length.
        latency_blocks=5, latency_block_seconds=0.002, reference=reference, by_site=by_site,
        scoring=scoring, metric=metric)
