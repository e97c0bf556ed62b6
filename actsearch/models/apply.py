"""apply_layout: a copy of a model with chosen activations at chosen sites, nothing else changed.

How each kind of site is replaced (``models/sites.py`` finds them):

- a module site: the module is swapped in the module tree (the model keeps its class);
- a call of a shared module: the module becomes a ``CallOrder``, which holds one activation
  per call and picks by the call's order within one forward, so an untraceable model's
  shared modules are split too;
- a functional site: the call is rewritten in the ``torch.fx`` graph, and the model returned
  is that ``GraphModule`` (same parameters and buffers; the class's own methods are gone).

``init="auto"`` re-initialises the weight layer feeding each replaced site for its new
activation (``init_layer_for``); ``keep`` (the default: a user's weights may be pretrained)
leaves every weight alone.
"""

from __future__ import annotations

import copy
import difflib
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from actsearch.errors import ActsearchError
from actsearch.models.activations import create_activation, get_activation, init_layer_for
from actsearch.models.layout import Layer, parse_layout
from actsearch.models.sites import (
    FUNCTIONAL,
    MODULE,
    REPLACED,
    REPLACES,
    SHARED_CALL,
    CallOrder,
    SiteReport,
    find_sites,
    functional_calls,
    restart_calls,
    trace,
)

__all__ = ["InitReport", "apply_layout", "as_layer", "site_layers"]

INITS = ("keep", "auto")

# Between a weight layer and its activation, these keep the signal per element, so an init
# chosen for the activation still reaches it: normalisation, dropout, identity, and
# elementwise arithmetic with constants.
_PASS_MODULES = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                 nn.modules.instancenorm._InstanceNorm, nn.modules.dropout._DropoutNd,
                 nn.Identity)
_WEIGHT_MODULES = (nn.Linear, nn.modules.conv._ConvNd)
_ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
                torch.add, torch.sub, torch.mul, torch.div, F.dropout,
                "add", "sub", "mul", "div", "neg"}
_COMBINES = {operator.add: "a residual add", torch.add: "a residual add", "add": "a residual add",
             operator.mul: "a product (a gate)", torch.mul: "a product (a gate)",
             "mul": "a product (a gate)"}


@dataclass
class InitReport:
    """What ``init="auto"`` did: the layer re-initialised for each site, and why not where not.

    Pass one to ``apply_layout(report=...)``; it is filled in.
    """

    initialised: dict[str, list[str]] = field(default_factory=dict)  # site -> weight layers
    no_feeding_layer: dict[str, str] = field(default_factory=dict)  # site -> why none

    def lines(self) -> list[str]:
        return ([f"{site}: initialised {', '.join(layers)}"
                 for site, layers in self.initialised.items()]
                + [f"{site}: no feeding layer ({why}); init kept"
                   for site, why in self.no_feeding_layer.items()])


def as_layer(value: Any, where: str) -> Layer:
    """A layout's value as a Layer: ``"elu"``, ``"elu(0.5)"``, ``("elu", 0.5)`` or a Layer."""
    if isinstance(value, Layer):
        get_activation(value.activation)
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        spec = get_activation(value[0])
        if spec.param is None and value[1] is not None:
            raise ActsearchError(f"{where}: {spec.name} takes no parameter, got {value[1]!r}",
                                 parameter="layout")
        return Layer(spec.name, None if spec.param is None else float(value[1]))
    if isinstance(value, str) and "|" not in value:
        try:
            return parse_layout(value).layers[0]
        except ActsearchError as e:
            raise ActsearchError(f"{where}: {e}", parameter="layout") from None
    raise ActsearchError(f"{where}: expected an activation name, 'name(param)', (name, param) "
                         f"or a Layer, got {value!r}", parameter="layout")


def _check_names(layout: Mapping[str, Any], found: SiteReport) -> None:
    valid = found.names + list(found.shared)
    for name in layout:
        if name not in valid:
            close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            reason = next((line for line in found.unsearchable if line.startswith(f"{name}:")),
                          None)
            if reason is not None:
                raise ActsearchError(f"layout: site {reason}", parameter="layout")
            raise ActsearchError(f"layout: no site {name!r} in the model{hint} (actsearch "
                                 f"sites lists them)", parameter="layout")
    for path in found.shared:
        split = [n for n in layout if n.startswith(f"{path}#")]
        if path in layout and split:
            raise ActsearchError(f"layout: {path!r} (all its calls) and {split[0]!r} (one "
                                 f"call) both given; give one of them", parameter="layout")


def apply_layout(model: nn.Module, layout: Mapping[str, Any], *, example_input: Any,
                 init: str = "keep", report: InitReport | None = None) -> nn.Module:
    """A new model with each site in ``layout`` running the activation given; the user's
    model is untouched.

    Args:
        model: The model (sites are found on it with ``example_input``).
        layout: Site name -> activation: ``"selu"``, ``"elu(0.5)"``, ``("elu", 0.5)`` or a
            ``Layer``. A shared module's name (``layer1.0.relu``) replaces all its calls,
            ``layer1.0.relu#1`` one call; sites not named keep what they run.
        example_input: A batch the model takes, as for ``find_sites``.
        init: ``keep`` leaves every weight as it is; ``auto`` re-initialises the last
            Linear/Conv feeding each replaced site (only normalisation, dropout or
            elementwise ops between) for its activation.
        report: An ``InitReport`` to fill in with what ``auto`` did and could not do.
    """
    if init not in INITS:
        raise ActsearchError(f"init: expected keep or auto, got {init!r}", parameter="init")
    layers = {name: as_layer(value, f"layout[{name!r}]") for name, value in layout.items()}
    found = find_sites(model, example_input)
    _check_names(layers, found)
    new = copy.deepcopy(model)
    split: dict[str, dict[int, Layer]] = {}
    for name, layer in layers.items():
        site = found[name] if name in found.names else None
        if site is None or site.kind == MODULE:  # a module, or a shared one with all its calls
            new.set_submodule(name, create_activation(layer.activation, layer.param))
        elif site.kind == SHARED_CALL:
            split.setdefault(site.module, {})[site.call] = layer
    for path, chosen in split.items():
        original = new.get_submodule(path)
        # An earlier apply_layout's split keeps its other calls as they were.
        kept = (list(original.calls) if isinstance(original, CallOrder)
                else [copy.deepcopy(original) for _ in range(found.shared[path])])
        calls = [create_activation(chosen[k].activation, chosen[k].param) if k in chosen
                 else kept[k] for k in range(found.shared[path])]
        new.set_submodule(path, CallOrder(calls))
    if split and restart_calls not in new._forward_pre_hooks.values():
        new.register_forward_pre_hook(restart_calls)
    functional = {n: layer for n, layer in layers.items()
                  if n in found.names and found[n].kind == FUNCTIONAL}
    if functional:
        new = _rewrite_functional(new, functional)
    if init == "auto":
        _initialise(new, layers, found, report if report is not None else InitReport())
    return new


def _rewrite_functional(model: nn.Module, chosen: dict[str, Layer]) -> fx.GraphModule:
    """The model traced, with each chosen functional call replaced by an activation module.

    The other functional calls become the registry's module for what they run too, where it
    computes exactly that: a GraphModule's forward no longer says which module made a call,
    and each replacement remembers it, so every site keeps its name.
    """
    restart_calls(model, ())
    graph_module, error = trace(model)
    restart_calls(model, ())  # tracing ran the shared modules' forwards
    if graph_module is None:  # find_sites traced it: a second trace fails only if forward
        raise ActsearchError(f"model: torch.fx cannot trace it ({error})", parameter="model")
    # The GraphModule rebuilds the module tree from the modules the graph calls: a split
    # module's calls stay, in plain containers. Its CallOrder goes back in their place, so
    # that find_sites still names those calls path#k.
    for path, module in model.named_modules():
        if isinstance(module, CallOrder):
            graph_module.set_submodule(path, module)
    graph = graph_module.graph
    container = getattr(graph_module, REPLACED, None)
    if container is None:
        container = nn.Module()
        graph_module.add_module(REPLACED, container)
    for name, node, base, owner, current in functional_calls(graph_module):
        layer = chosen.get(name, None if node.op == "call_module" else current)
        if layer is None:
            continue
        module = create_activation(layer.activation, layer.param)
        setattr(module, REPLACES, (base, owner))  # its site keeps its name (find_sites)
        target = str(node.target)
        if node.op == "call_module" and target.startswith(f"{REPLACED}."):
            key = target.split(".", 1)[1]  # replaced before: replaced again in its place
        else:
            key = re.sub(r"\W+", "_", name.replace("()", "")).strip("_") or "call"
            while hasattr(container, key):
                key += "_"
        container.add_module(key, module)
        with graph.inserting_after(node):
            replacement = graph.call_module(f"{REPLACED}.{key}", (node.args[0],))
        node.replace_all_uses_with(replacement)
        graph.erase_node(node)
    graph.lint()
    graph_module.recompile()
    graph_module.train(model.training)
    return graph_module


def _initialise(model: nn.Module, layers: dict[str, Layer], found: SiteReport,
                report: InitReport) -> None:
    """Re-initialise the weight layer feeding each replaced site, from the model's graph."""
    restart_calls(model, ())
    graph_module, error = (model, None) if isinstance(model, fx.GraphModule) else trace(model)
    restart_calls(model, ())
    nodes: dict[str, list[fx.Node]] = {}
    if graph_module is not None:
        functional = {call.node: call.name for call in functional_calls(graph_module)}
        for node in graph_module.graph.nodes:
            for name in _sites_of(node, found, functional):
                nodes.setdefault(name, []).append(node)
    for name, layer in layers.items():
        if graph_module is None:
            report.no_feeding_layer[name] = f"torch.fx cannot trace the model: {error}"
            continue
        feeding, why = [], None
        for node in nodes.get(name, []):
            path, why = _feeding_layer(graph_module, node)
            if path is not None and path not in feeding:
                feeding.append(path)
        if not feeding:
            report.no_feeding_layer[name] = why or "not found in the traced graph"
            continue
        for path in feeding:
            init_layer_for(graph_module.get_submodule(path), layer.activation)
        report.initialised[name] = feeding


def _sites_of(node: fx.Node, found: SiteReport, functional: dict[fx.Node, str]) -> list[str]:
    """The layout names a graph node runs: a functional call (replaced or not), a module,
    and for one call of a split module both the module's name and that call's."""
    if node in functional:
        return [functional[node]]
    if node.op != "call_module":
        return []
    target = str(node.target)
    for path in found.shared:  # a split module's k-th call runs path.calls.k
        if target.startswith(f"{path}.calls."):
            return [path, f"{path}#{target.rsplit('.', 1)[1]}"]
    return [target]


def _feeding_layer(graph_module: fx.GraphModule, node: fx.Node) -> tuple[str | None, str]:
    """The Linear/Conv whose output reaches ``node`` through only normalisation, dropout or
    elementwise ops with constants; else None and what is in the way."""
    current = node.args[0] if node.args else None
    while True:
        if not isinstance(current, fx.Node):
            return None, "its input is not a traced tensor"
        if current.op == "call_module":
            module = graph_module.get_submodule(str(current.target))
            if isinstance(module, _WEIGHT_MODULES):
                return str(current.target), ""
            if not isinstance(module, _PASS_MODULES):
                return None, f"{current.target} ({type(module).__name__}) comes before it"
            current = current.args[0] if current.args else None
        elif current.op in ("call_function", "call_method"):
            tensors = [a for a in (*current.args, *current.kwargs.values())
                       if isinstance(a, fx.Node)]
            if len(tensors) > 1:
                what = _COMBINES.get(current.target, f"{current.target}")
                return None, f"its input is {what} of {len(tensors)} tensors"
            if current.target not in _ELEMENTWISE:
                name = getattr(current.target, "__name__", current.target)
                return None, f"{name} comes before it"
            current = tensors[0] if tensors else None
        else:
            return None, "its input is the model's input"


def site_layers(found: SiteReport) -> dict[str, Layer]:
    """Each site's current activation as a layout: applied, it changes nothing."""
    return {site.name: Layer(site.activation, site.param) for site in found.sites}

