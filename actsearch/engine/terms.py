"""The claims' terms, defined once: early and deep, sharp and smooth, gating path, without
normalisation, costs little. ``actsearch.engine.claims`` designs its arms by them and the
report prints them under the claims table (``TERMS``); docs/claims.md defines them the same
way. No torch and no Optuna: a report reads them without either.

- early: the first floor(d/2) of the d searched units in execution order (input side first),
  deep: the rest, so the middle one of an odd count counts as deep. A unit is a hidden layer
  of a shipped family, or a group of a factory model's sites (each site its own group when
  the space declares none; groups by stage make early the first stage). A factory model's
  groups must follow one another in execution order: groups whose sites interleave (a gate
  group and a signal group spanning every block) have no early and deep.
- sharp: ReLU-like units (``SHARP``); smooth: ``SMOOTH``. The arms use ReLU for sharp and ELU
  for smooth.
- gating path: the sites of a factory model's groups marked ``role: gate`` (a GLU's gate
  activation); main signal path: those marked ``role: signal``.
- without normalisation: a shipped family's ``norm: none``; a factory model built with the
  space's ``claims.without_norm`` keyword arguments (``{norm: none}``) over ``model.kwargs``.
- costs little: the latency of the network with ELU at every site is within
  ``actsearch.engine.latency.MARGIN`` (10%) of the same network with ReLU, eager and under
  ``torch.compile``, at batch 1 and at a large batch (timed by ``actsearch.engine.latency``
  after the arms are trained; an equivalence claim: supported when the ratio is
  significantly below 1 + margin).
"""

from __future__ import annotations

__all__ = ["SHARP", "SMOOTH", "TERMS"]

SHARP = ("relu", "leaky_relu")  # ReLU-like: piecewise linear, a kink at zero
SMOOTH = ("elu", "selu", "celu", "gelu", "silu")

# The terms in a few sentences, as the report prints them under the claims table.
TERMS = ("early: the first floor(d/2) of the d hidden layers (a factory model's: of its d "
         "groups of sites, which must follow one another), input side first; deep: the rest. "
         f"sharp: {', '.join(SHARP)}; smooth: {', '.join(SMOOTH)}. Gating paths: a factory "
         "model's groups marked role: gate; main signal path: role: signal. Without "
         "normalisation: norm none (a factory model: built with claims.without_norm).")
