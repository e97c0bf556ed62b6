"""Activation sites: every place in a model's forward where an activation runs, named by path.

Three kinds, found with one example input:

- ``module``: a registered activation module (``nn.ReLU``, ``nn.ELU``...) called once per
  forward, named by its module path (``features.3``). A module called several times stays one
  such site (one tied choice) when ``split_shared=False``.
- ``shared-call``: one call of a module that forward calls several times (torchvision's
  ResNet calls one ``self.relu`` twice per block): ``layer1.0.relu#1`` is the second call.
- ``functional``: a call of ``F.relu``, ``torch.tanh``, ``x.relu()``... in a forward, named
  by the module whose forward makes it and the activation, with a call: ``blocks.0.tanh()``
  (``#k`` again numbers the calls when there are several).

Module calls are counted by forward hooks, functional calls by a ``TorchFunctionMode``, both
in one eager forward pass, so both are found even when ``torch.fx`` cannot trace the model.
The traced graph is what ``apply_layout`` rewrites functional calls in; when the model does
not trace, its functional sites are listed as unsearchable with the trace error. An
activation inside a custom ``torch.autograd.Function`` is unsearchable too: replacing it
would not change the function's own backward (it is seen by autograd being off inside the
function's forward while the pass runs with gradients on).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from actsearch.errors import ActsearchError
from actsearch.models.activations import activation_of, get_activation
from actsearch.models.layout import Layer

__all__ = ["CallOrder", "FunctionalCall", "Site", "SiteReport", "SiteTensors", "find_sites",
           "functional_calls", "restart_calls", "site_tensors", "trace"]

MODULE, SHARED_CALL, FUNCTIONAL = "module", "shared-call", "functional"
# Where apply_layout puts the modules that replace functional calls (a name no model is
# likely to use); each remembers the call it replaced in this attribute, so that the sites of
# an applied model keep their names.
REPLACED = "actsearch_sites"
REPLACES = "_actsearch_replaces"


class CallOrder(nn.Module):
    """A shared module split by call: the k-th call within one forward runs ``calls[k]``.

    apply_layout puts it where a shared module was. The count restarts at every forward of
    the model (``restart_calls``, a pre-hook on it) and wraps around after the last call, so
    that calling the block on its own still cycles through the calls.
    """

    def __init__(self, calls: list[nn.Module]) -> None:
        super().__init__()
        self.calls = nn.ModuleList(calls)
        self.count = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        module = self.calls[self.count % len(self.calls)]
        self.count += 1
        return module(*args, **kwargs)


def restart_calls(model: nn.Module, args: Any = ()) -> None:
    """Restart every CallOrder's count (the pre-hook apply_layout puts on a model)."""
    for m in model.modules():
        if isinstance(m, CallOrder):
            m.count = 0


@dataclass(frozen=True)
class Site:
    """One searchable place where an activation runs.

    Attributes:
        name: ``path`` (a module called once, or a shared module kept tied), ``path#k`` (the
            k-th call of a shared module), ``owner.act()`` or ``owner.act()#k`` (functional).
        kind: ``module``, ``shared-call`` or ``functional``.
        module: The activation module's path, or for a functional call the path of the
            module whose forward makes it (``""``: the model itself).
        activation: The registry's name of what runs there now.
        param: Its parameter (ELU's alpha...) where it has one.
        calls: How many times the site runs in one forward.
        shape: The output's shape with the example input (of the first call).
        call: Which call of the module or function this is (k of ``#k``); None when tied.
    """

    name: str
    kind: str
    module: str
    activation: str
    param: float | None
    calls: int
    shape: tuple[int, ...] | None
    call: int | None = None

    @property
    def current(self) -> str:
        """What runs there now, in the layout's display form (``elu(0.50)``)."""
        return str(Layer(self.activation, self.param))


@dataclass(frozen=True)
class SiteReport:
    """The sites of a model, input side first, and what cannot be searched (one line each)."""

    sites: tuple[Site, ...]
    unsearchable: tuple[str, ...] = ()
    trace_error: str | None = None  # why torch.fx could not trace the model, if it could not
    shared: dict[str, int] = field(default_factory=dict)  # shared module path -> calls

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sites]

    def __getitem__(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)


# Functions and Tensor methods that run a registered activation, and where their parameter
# sits: (registry name, the parameter's position in args, its keyword).
def _functions() -> dict[Any, tuple[str, int | None, str | None]]:
    table: dict[Any, tuple[str, int | None, str | None]] = {}
    for act, fns in {
        "relu": (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                 torch.Tensor.relu_),
        "elu": (F.elu, F.elu_),
        "selu": (F.selu, torch.selu, torch.selu_),
        "leaky_relu": (F.leaky_relu, F.leaky_relu_),
        "celu": (F.celu, torch.celu, torch.celu_),
        "gelu": (F.gelu,),
        "silu": (F.silu,),
        "tanh": (F.tanh, torch.tanh, torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_),
        "sigmoid": (F.sigmoid, torch.sigmoid, torch.sigmoid_, torch.Tensor.sigmoid,
                    torch.Tensor.sigmoid_),
    }.items():
        spec = get_activation(act)
        for fn in fns:
            table[fn] = (act, None if spec.param is None else 1, spec.param)
    return table


_FUNCTIONS = _functions()
# fx records a Tensor method as call_method with the method's name.
_METHODS = {fn.__name__: entry for fn, entry in _FUNCTIONS.items()
            if getattr(fn, "__objclass__", None) is not None}


def _functional(func: Any, method: bool = False) -> tuple[str, int | None, str | None] | None:
    if method:
        return _METHODS.get(func)
    try:
        return _FUNCTIONS.get(func)
    except TypeError:  # an unhashable callable is no activation
        return None


def _param(entry: tuple[str, int | None, str | None], args: tuple, kwargs: dict) -> float | None:
    act, position, keyword = entry
    if keyword is None:
        return None
    value = kwargs.get(keyword, args[position] if position is not None and len(args) > position
                       else get_activation(act).default)
    return float(value) if isinstance(value, int | float) else None


def _numbered(bases: list[str]) -> list[str]:
    """Each base name, with ``#k`` (the k-th) where the same base occurs more than once."""
    totals, seen, names = Counter(bases), Counter(), []
    for base in bases:
        names.append(base if totals[base] == 1 else f"{base}#{seen[base]}")
        seen[base] += 1
    return names


def _functional_base(owner: str, act: str) -> str:
    return f"{owner}.{act}()" if owner else f"{act}()"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def trace(model: nn.Module) -> tuple[fx.GraphModule | None, str | None]:
    """The model traced by ``torch.fx``, or None and the trace error's first line."""
    try:
        return fx.symbolic_trace(model), None
    except Exception as e:  # fx raises many types; the reason is what the user needs
        return None, _first_line(e)


class FunctionalCall(NamedTuple):
    """A functional site in a traced graph."""

    name: str  # the site's name, as find_sites gives it
    node: fx.Node
    base: str  # the name without #k
    owner: str  # the module whose forward makes the call
    # What it runs, when the registry's module computes exactly that (no argument beyond the
    # input, the parameter and inplace); else None.
    layer: Layer | None


def functional_calls(graph_module: fx.GraphModule) -> list[FunctionalCall]:
    """The traced graph's functional sites, in order, named as ``find_sites`` names them
    (from fx's record of the module each node was traced in).

    A call an earlier ``apply_layout`` replaced by a module counts as the call it was.
    """
    found = []
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            module = graph_module.get_submodule(str(node.target))
            replaces = getattr(module, REPLACES, None)
            if replaces is not None:
                found.append((replaces[0], node, *replaces, Layer(*activation_of(module))))
            continue
        if node.op not in ("call_function", "call_method"):
            continue
        entry = _functional(node.target, method=node.op == "call_method")
        if entry is None:
            continue
        stack = list(node.meta.get("nn_module_stack", {}).values())
        owner = stack[-1][0] if stack else ""
        base = _functional_base(owner, entry[0])
        param = _param(entry, node.args, node.kwargs)
        exact = (set(node.kwargs) <= {"inplace", entry[2]}
                 and len(node.args) <= (1 if entry[2] is None else 2)
                 and (entry[2] is None or param is not None))
        found.append((base, node, base, owner, Layer(entry[0], param) if exact else None))
    names = _numbered([base for base, *_ in found])
    return [FunctionalCall(name, *rest) for name, (_, *rest) in zip(names, found, strict=True)]


@dataclass
class _Call:
    """One activation call seen in the eager pass."""

    base: str  # the module path, or the functional base name
    kind: str  # MODULE or FUNCTIONAL
    module: str
    activation: str
    param: float | None
    shape: tuple[int, ...] | None
    in_function: bool  # inside a custom autograd function's forward
    owner_class: str = ""  # the class of the module that makes the call
    # With keep=True (site_tensors): the call's input (cloned before the call, so an in-place
    # activation leaves it as it was) and its output, still in the autograd graph.
    tensors: tuple[torch.Tensor, torch.Tensor] | None = None


# How the eager pass sees a running module: fx traces into it (its functional calls are
# sites), it is an activation module (its own functional call is the module site), or it is
# another torch.nn module fx keeps whole (an activation it calls cannot be replaced).
_OPEN, _ACTIVATION, _CLOSED = "open", "activation", "closed"


class _FunctionalCalls(TorchFunctionMode):
    """Records the activation functions a forward calls, with the module that calls them."""

    def __init__(self, stack: list[tuple[str, str, str]],
                 record: Callable[[_Call], None], keep: bool = False) -> None:
        super().__init__()
        self.stack = stack  # (module path, _OPEN/_ACTIVATION/_CLOSED, class) of running forwards
        self.record = record
        self.keep = keep

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        entry = _functional(func)
        seen = entry is not None and bool(self.stack) and self.stack[-1][1] != _ACTIVATION
        before = _input(args) if seen and self.keep else None
        out = func(*args, **kwargs)
        if not seen:
            return out
        owner, state, cls = self.stack[-1]
        kind = FUNCTIONAL if state == _OPEN else _CLOSED
        self.record(_Call(_functional_base(owner, entry[0]), kind, owner, entry[0],
                          _param(entry, args, kwargs), _shape(out),
                          not torch.is_grad_enabled(), cls, _kept(before, out)))
        return out


def _input(args: Any) -> torch.Tensor | None:
    first = args[0] if isinstance(args, tuple | list) and args else None
    return first.clone() if isinstance(first, torch.Tensor) else None


def _kept(before: torch.Tensor | None, out: Any
          ) -> tuple[torch.Tensor, torch.Tensor] | None:
    return (before, out) if before is not None and isinstance(out, torch.Tensor) else None


def _shape(out: Any) -> tuple[int, ...] | None:
    return tuple(out.shape) if isinstance(out, torch.Tensor) else None


def _as_args(example_input: Any) -> tuple:
    return tuple(example_input) if isinstance(example_input, tuple | list) else (example_input,)


def _eager_calls(model: nn.Module, example_input: Any, keep: bool = False
                 ) -> tuple[list[_Call], Any]:
    """Every activation call of one forward pass, in order (eval mode, the model unchanged),
    and the model's output; ``keep`` keeps each call's tensors (``_Call.tensors``)."""
    calls: list[_Call] = []
    inputs: list[torch.Tensor | None] = []  # the running activation modules' inputs (keep)
    stack: list[tuple[str, str, str]] = []
    tracer = fx.Tracer()
    handles = []
    # A split shared module's calls run its CallOrder's modules: they are that module's calls.
    split = {f"{path}.calls.{k}": path for path, m in model.named_modules()
             if isinstance(m, CallOrder) for k in range(len(m.calls))}
    for path, module in model.named_modules():
        found = activation_of(module)
        base, kind, owner = split.get(path, path), MODULE, split.get(path, path)
        if getattr(module, REPLACES, None) is not None:  # a functional call, replaced
            (base, owner), kind = getattr(module, REPLACES), FUNCTIONAL

        def enter(m: nn.Module, a: Any, path: str = path,
                  found: tuple[str, float | None] | None = found) -> None:
            state = (_ACTIVATION if found is not None
                     else _OPEN if m is model or not tracer.is_leaf_module(m, path) else _CLOSED)
            stack.append((path, state, type(m).__name__))
            if found is not None and keep:
                inputs.append(_input(a))

        def leave(m: nn.Module, a: Any, out: Any, base: str = base, kind: str = kind,
                  owner: str = owner, found: tuple[str, float | None] | None = found) -> None:
            stack.pop()
            if found is not None:
                calls.append(_Call(base, kind, owner, found[0], found[1], _shape(out),
                                   not torch.is_grad_enabled(),
                                   tensors=_kept(inputs.pop(), out) if keep else None))

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    modes = {m: m.training for m in model.modules()}
    model.eval()  # no batch-norm statistics updated, no dropout drawn
    try:
        # Gradients on: autograd is off only inside a custom autograd function's forward.
        with torch.enable_grad(), _FunctionalCalls(stack, calls.append, keep):
            output = model(*_as_args(example_input))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.train(training)
    return calls, output


def find_sites(model: nn.Module, example_input: Any, *, split_shared: bool = True) -> SiteReport:
    """Find every activation site of ``model`` with one forward pass of ``example_input``.

    Args:
        model: Any ``nn.Module``; it is left as it was (the pass runs in eval mode).
        example_input: A tensor (or a tuple of the forward's tensor arguments), e.g. a
            batch of two samples.
        split_shared: One site per call of a module called several times (True), or one tied
            site for all its calls (False).
    """
    if not isinstance(model, nn.Module):
        raise ActsearchError(f"model: expected a torch nn.Module, got {type(model).__name__}",
                             parameter="model")
    return _report(model, _eager_calls(model, example_input)[0], split_shared)[0]


def _report(model: nn.Module, calls: list[_Call], split_shared: bool
            ) -> tuple[SiteReport, list[tuple[str, _Call]]]:
    """The sites of the calls of one eager pass, and each searchable call with its site."""
    graph, trace_error = trace(model)
    module_calls = Counter(c.base for c in calls if c.kind == MODULE)
    shared = {path: n for path, n in module_calls.items() if n > 1}
    bases = [c.base for c in calls]
    names = _numbered(bases)
    totals = Counter(bases)
    seen: Counter[str] = Counter()
    sites: list[Site] = []
    unsearchable: list[str] = []
    named: list[tuple[str, _Call]] = []
    for name, c in zip(names, calls, strict=True):
        k = seen[c.base]
        seen[c.base] += 1
        if c.in_function:
            unsearchable.append(f"{name}: {c.activation} runs inside a custom autograd "
                                f"function, whose own backward would not follow a replacement")
            continue
        if c.kind == _CLOSED:
            unsearchable.append(f"{c.module}: {c.activation} runs inside {c.owner_class}, a "
                                f"torch.nn module kept whole (pass it an activation module, "
                                f"if it takes one, to make it a site)")
            continue
        if c.kind == FUNCTIONAL and graph is None:
            unsearchable.append(f"{name}: functional {c.activation}: torch.fx cannot trace the "
                                f"model ({trace_error})")
            continue
        if c.kind == MODULE and c.base in shared and not split_shared:
            if k == 0:
                sites.append(Site(c.base, MODULE, c.module, c.activation, c.param,
                                  totals[c.base], c.shape))
            named.append((c.base, c))
            continue
        kind = SHARED_CALL if c.kind == MODULE and c.base in shared else c.kind
        sites.append(Site(name, kind, c.module, c.activation, c.param, 1, c.shape,
                          k if totals[c.base] > 1 else None))
        named.append((name, c))
    return (SiteReport(tuple(sites), tuple(dict.fromkeys(unsearchable)), trace_error, shared),
            named)


@dataclass(frozen=True)
class SiteTensors:
    """One forward pass seen site by site (``site_tensors``)."""

    output: Any  # the model's output, in the autograd graph
    # site name -> (activation, parameter, input, output) of each call, in execution order;
    # a tied shared module's calls are all under its one name.
    calls: dict[str, list[tuple[str, float | None, torch.Tensor, torch.Tensor]]]


def site_tensors(model: nn.Module, example_input: Any) -> SiteTensors:
    """One forward pass of ``model`` (eval mode, autograd on), with each site's input and
    output tensors under the site's name as ``find_sites`` gives it, input side first.

    The probes of a factory model's sites read them; a site whose call the pass did not see
    (or whose input is not a tensor) is absent.
    """
    calls, output = _eager_calls(model, example_input, keep=True)
    result: dict[str, list[tuple[str, float | None, torch.Tensor, torch.Tensor]]] = {}
    for name, c in _report(model, calls, split_shared=True)[1]:
        if c.tensors is not None:
            result.setdefault(name, []).append((c.activation, c.param, *c.tensors))
    return SiteTensors(output, result)
