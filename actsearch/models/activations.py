"""The activation registry: name -> torch module, its tunable parameter, its weight init.

Each activation carries the init that keeps signals well scaled through the layer that feeds
it: LeCun normal for SELU (the self-normalising fixed point needs weight variance 1/fan_in),
Kaiming for the rectifier family, Xavier for tanh and sigmoid.

torch is imported only when a module is built, so that validating a space file
(checking a space file) starts without loading torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actsearch.errors import ActsearchError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ActivationSpec",
    "BATCHED_TERMS",
    "DEFAULT_CHOICES",
    "SELU_ALPHA",
    "SELU_SCALE",
    "activation_names",
    "activation_of",
    "create_activation",
    "get_activation",
    "init_layer_for",
    "register_activation",
]

# The exact constants of Klambauer et al. (2017), the ones torch.nn.SELU uses.
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805

# The terms a population computes an activation from when its members each chose their own
# (training/batched.py): the activation of a member is a sum of these, each a finite function
# of the input times a per-member coefficient, so a member's unused terms add exact zeros with
# zero gradients (a mask over a branch that overflows, such as exp, would give NaN gradients):
#   relu: relu(x)    expm1: expm1(expm1_scale * min(x, 0))    negative: min(x, 0)
#   gelu, silu, tanh, sigmoid: the function itself
# expm1_scale is the inner scale of the expm1 term (CELU's 1 / alpha), not a term of its own.
BATCHED_TERMS = ("relu", "expm1", "expm1_scale", "negative", "gelu", "silu", "tanh", "sigmoid")


@dataclass(frozen=True)
class ActivationSpec:
    """One registered activation.

    Attributes:
        name: The name used in space files, layouts and exported configs.
        torch_class: The ``torch.nn`` class that implements it.
        param: The keyword of its one tunable parameter (e.g. ``alpha``), or None.
        default: The parameter's default value (uniform baselines use it).
        low, high, log: The parameter's default search range.
        init: Weight init of a layer feeding this activation: kaiming, lecun or xavier.
        batched: Its form in a population: its parameter (or None) -> coefficients of
            ``BATCHED_TERMS`` (absent ones are 0). None: it trains one candidate at a time.
    """

    name: str
    torch_class: str
    param: str | None = None
    default: float | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    init: str = "kaiming"
    batched: Callable[[float | None], dict[str, float]] | None = None


_REGISTRY: dict[str, ActivationSpec] = {}


def register_activation(spec: ActivationSpec) -> None:
    """Add an activation to the registry (or replace one of the same name)."""
    if spec.init not in ("kaiming", "lecun", "xavier"):
        raise ValueError(f"init must be kaiming, lecun or xavier, got {spec.init!r}")
    if spec.param is not None and (spec.default is None or spec.low is None or spec.high is None):
        raise ValueError(f"activation {spec.name!r} has a parameter but no default or range")
    if spec.batched is not None:
        unknown = set(spec.batched(spec.default)) - set(BATCHED_TERMS)
        if unknown:
            raise ValueError(f"activation {spec.name!r}: batched terms {sorted(unknown)} are not "
                             f"among {', '.join(BATCHED_TERMS)}")
    _REGISTRY[spec.name] = spec


for _spec in (
    # ELU(alpha) = relu(x) + alpha * expm1(min(x, 0)); SELU = scale * ELU(alpha) with torch's
    # constants; CELU(alpha) = relu(x) + alpha * expm1(min(x, 0) / alpha).
    ActivationSpec("relu", "ReLU", batched=lambda _: {"relu": 1.0}),
    ActivationSpec("elu", "ELU", "alpha", 1.0, 0.1, 2.0,
                   batched=lambda a: {"relu": 1.0, "expm1": a, "expm1_scale": 1.0}),
    ActivationSpec("selu", "SELU", init="lecun",
                   batched=lambda _: {"relu": SELU_SCALE, "expm1": SELU_SCALE * SELU_ALPHA,
                                      "expm1_scale": 1.0}),
    ActivationSpec("leaky_relu", "LeakyReLU", "negative_slope", 0.01, 0.001, 0.3, log=True,
                   batched=lambda s: {"relu": 1.0, "negative": s}),
    ActivationSpec("celu", "CELU", "alpha", 1.0, 0.1, 2.0,
                   batched=lambda a: {"relu": 1.0, "expm1": a, "expm1_scale": 1.0 / a}),
    ActivationSpec("gelu", "GELU", batched=lambda _: {"gelu": 1.0}),
    ActivationSpec("silu", "SiLU", batched=lambda _: {"silu": 1.0}),
    ActivationSpec("tanh", "Tanh", init="xavier", batched=lambda _: {"tanh": 1.0}),
    ActivationSpec("sigmoid", "Sigmoid", init="xavier", batched=lambda _: {"sigmoid": 1.0}),
):
    register_activation(_spec)

# The default per-layer choice: the three activations actsearch is about.
DEFAULT_CHOICES: tuple[str, ...] = ("relu", "elu", "selu")


def activation_names() -> list[str]:
    """All registered activation names, in registration order."""
    return list(_REGISTRY)


def get_activation(name: str) -> ActivationSpec:
    """Look an activation up by name; an unknown name raises an error listing valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(_REGISTRY)
        raise ActsearchError(f"unknown activation {name!r}; expected one of: {valid}") from None


def activation_of(module: nn.Module) -> tuple[str, float | None] | None:
    """The registry's name (and parameter) of an activation module, or None for any other.

    The module's exact class must be a registered one: a subclass may compute something else.
    """
    from torch import nn

    for spec in _REGISTRY.values():
        if type(module) is getattr(nn, spec.torch_class, None):
            param = None if spec.param is None else float(getattr(module, spec.param))
            return spec.name, param
    return None


def create_activation(name: str, param: float | None = None) -> nn.Module:
    """Build the activation module, with its parameter (or its default) when it takes one."""
    from torch import nn

    spec = get_activation(name)
    cls = getattr(nn, spec.torch_class)
    if spec.param is None:
        return cls()
    return cls(**{spec.param: float(spec.default if param is None else param)})


def init_layer_for(layer: nn.Module, activation: str) -> None:
    """Initialise a Linear/Conv layer's weights for the activation that follows it.

    Biases start at zero so that the init alone sets the signal's scale.
    """
    import torch
    from torch import nn

    spec = get_activation(activation)
    with torch.no_grad():
        weight = layer.weight
        fan_in = weight[0].numel()
        if spec.init == "lecun":
            nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))
        elif spec.init == "xavier":
            nn.init.xavier_normal_(weight, gain=nn.init.calculate_gain("tanh"))
        else:
            nn.init.kaiming_normal_(weight, nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
