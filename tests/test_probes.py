from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from actsearch.models.apply import apply_layout
from actsearch.models.build import build_model
from actsearch.models.layout import parse_layout
from actsearch.schema.space import ModelSpec
from actsearch.training.probes import (
    METRICS,
    activation_stats,
    compare_latency,
    convergence_speed,
    divergence,
    gradient_flow,
    measure_all,
    measure_latency,
    robustness,
    site_stats,
)


def _constant_preactivation(act: nn.Module, bias: float, width: int = 8) -> nn.Sequential:
    """Linear(4, width) with zero weights: every pre-activation equals ``bias``."""
    model = nn.Sequential(nn.Linear(4, width), act, nn.Linear(width, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(bias)
    return model


def _identity_layer(act: nn.Module) -> nn.Sequential:
    """The activation sees the input unchanged."""
    model = nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
    return model


@pytest.mark.parametrize(("act", "dead"), [(nn.ReLU(), 1.0), (nn.ELU(), 0.0), (nn.SELU(), 0.0)])
def test_all_negative_preactivations(act: nn.Module, dead: float) -> None:
    # At -1 a ReLU's derivative is 0, ELU's is exp(-1) and SELU's 1.76 * exp(-1).
    (stats,) = activation_stats(_constant_preactivation(act, -1.0), torch.randn(64, 4))
    assert stats.dead_fraction == dead
    assert stats.units == 8


def test_saturated_elu_and_selu_count_as_dead() -> None:
    for act in (nn.ELU(), nn.SELU()):
        (stats,) = activation_stats(_constant_preactivation(act, -30.0), torch.randn(16, 4))
        assert stats.dead_fraction == 1.0


def test_dead_fraction_counts_units() -> None:
    model = _constant_preactivation(nn.ReLU(), 0.0)
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([-1.0, 1.0] * 4))
    assert activation_stats(model, torch.randn(16, 4))[0].dead_fraction == 0.5


def test_a_unit_alive_on_one_sample_is_alive() -> None:
    model = _identity_layer(nn.ReLU())
    x = -torch.rand(32, 4) - 0.1  # all negative: every unit dead...
    x[5, 2] = 1.0  # ...but unit 2 fires once
    assert activation_stats(model, x)[0].dead_fraction == 0.75


def test_activation_mean_and_std_on_standard_normal_input() -> None:
    x = torch.randn(20000, 4, generator=torch.Generator().manual_seed(0))
    (relu,) = activation_stats(_identity_layer(nn.ReLU()), x)
    (elu,) = activation_stats(_identity_layer(nn.ELU()), x)
    assert relu.mean > elu.mean
    # Closed forms for x ~ N(0, 1): E[relu] = 1/sqrt(2 pi), Var = 1/2 - 1/(2 pi);
    # E[elu] = 1/sqrt(2 pi) + e^(1/2) Phi(-1) - 1/2.
    assert relu.mean == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.01)
    assert relu.std == pytest.approx(math.sqrt(0.5 - 1 / (2 * math.pi)), abs=0.01)
    assert elu.mean == pytest.approx(0.3989 + math.exp(0.5) * 0.158655 - 0.5, abs=0.01)


def test_activation_stats_of_a_cnn_and_hooks_removed() -> None:
    arch = ModelSpec(family="cnn1d", width=6, depth=2, kernel_size=3)
    model = build_model(arch, parse_layout("relu | selu"), (20,), 4).train()
    stats = activation_stats(model, torch.randn(8, 20))
    assert [s.name for s in stats] == ["ReLU", "SELU"]
    assert [s.units for s in stats] == [6, 6]
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model)


def test_gradient_flow_of_a_default_model_is_sane() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=32, depth=3), parse_layout("relu | elu | selu"),
                        (10,), 3)
    flow = gradient_flow(model, torch.randn(64, 10), torch.randint(0, 3, (64,)))
    assert len(flow.norms) == 3
    assert all(n > 0 for n in flow.norms)
    assert 0.01 < flow.ratio < 100
    assert all(p.grad is None for p in model.parameters())  # .grad left alone


def test_gradient_flow_accepts_inference_tensors() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.inference_mode():
        x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    assert gradient_flow(model, x, y).norms[0] > 0


def test_gradient_flow_through_norm_and_dropout_layers() -> None:
    arch = ModelSpec(width=16, depth=2, norm=("batch",), dropout=0.1)
    model = build_model(arch, parse_layout("relu | relu"), (5,), 3)
    assert len(gradient_flow(model, torch.randn(8, 5), torch.randint(0, 3, (8,))).norms) == 2


def test_gradient_ratio_of_a_saturated_first_layer_vanishes() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ELU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    with torch.no_grad():
        # Deep in saturation: ELU passes a constant -1 on, with a derivative of exp(-30), so
        # the first weights get (almost) no gradient while the second still learn.
        model[0].bias.fill_(-30.0)
        model[0].weight.mul_(0.01)
        model[2].bias.fill_(1.0)
    flow = gradient_flow(model, torch.randn(16, 4), torch.randint(0, 3, (16,)))
    assert flow.norms[0] < 1e-10
    assert flow.norms[1] > 1e-3
    assert flow.ratio < 1e-8


def test_robustness_of_a_model_that_ignores_its_input() -> None:
    model = _constant_preactivation(nn.ReLU(), 1.0)  # same output for every input
    x, y = torch.randn(200, 4), torch.randint(0, 3, (200,))
    rob = robustness(model, x, y, sigmas=(0.1, 0.3), scales=(1.5,))
    assert rob.clean_acc > 0
    assert rob.noise == {0.1: 1.0, 0.3: 1.0}
    assert rob.scale == {1.5: 1.0}


def test_robustness_noise_hurts_a_sharp_classifier() -> None:
    # Classes split at x0 = 0 with inputs close to the boundary: noise flips many labels.
    model = nn.Sequential(nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model[0].bias.zero_()
    x = (torch.rand(1000, 1) - 0.5) * 0.2
    y = (x[:, 0] > 0).long()
    rob = robustness(model, x, y, sigmas=(0.3,), scales=(1.5,))
    assert rob.clean_acc == 1.0
    assert rob.noise[0.3] < 0.8
    assert rob.scale[1.5] == 1.0  # scaling keeps the sign


def test_latency_of_a_heavier_model_is_higher() -> None:
    light = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 10))
    heavy = nn.Sequential(nn.Linear(40, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                          nn.Linear(2048, 10))
    x = torch.randn(8, 40)
    # About a thousand times the arithmetic: the order cannot flip on a busy machine.
    a = measure_latency(light, x, 32, blocks=5, block_seconds=0.002)
    b = measure_latency(heavy, x, 32, blocks=5, block_seconds=0.002)
    assert b.median_s > a.median_s
    assert a.q1_s <= a.median_s <= a.q3_s
    assert (a.batch_size, a.blocks, a.device) == (32, 5, "cpu")
    assert a.per_sample_s == pytest.approx(a.median_s / 32)


def test_compare_latency_pairs_blocks() -> None:
    light = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 10))
    heavy = nn.Sequential(nn.Linear(40, 2048), nn.ReLU(), nn.Linear(2048, 10))
    c = compare_latency(heavy, light, torch.randn(4, 40), 64, blocks=4, block_seconds=0.002)
    assert c.ratio > 1
    assert c.ratio_q1 <= c.ratio <= c.ratio_q3
    assert c.model.blocks == c.reference.blocks == 4
    assert c.model.median_s > c.reference.median_s


def test_latency_restores_training_mode() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    measure_latency(model, torch.randn(1, 4), 3, blocks=2, block_seconds=0.0)
    assert model.training


def test_convergence_speed_on_a_hand_made_curve() -> None:
    # 95% of the final 0.9 is 0.855: first reached at epoch 4.
    conv = convergence_speed([0.2, 0.5, 0.8, 0.86, 0.84, 0.9], [2.0, 1.0, 0.6, 0.5, 0.5, 0.4])
    assert conv.epochs_to_target == 4
    assert conv.val_loss_auc == pytest.approx(5.0 / 6)
    assert convergence_speed([0.5], [1.0]).epochs_to_target == 1
    empty = convergence_speed([], [])
    assert empty.epochs_to_target is None and math.isnan(empty.val_loss_auc)
    assert convergence_speed([0.1, 0.2], [1.0, math.nan]).val_loss_auc == math.inf


def test_divergence_signals() -> None:
    div = divergence([2.0, 1.0, 0.5, 1.2, 0.4, math.nan])
    assert div.non_finite and div.first_non_finite_epoch == 6
    assert div.spikes == 1 and div.first_spike_epoch == 4  # 1.2 > 2 * 0.5
    assert div.max_spike == pytest.approx(2.4)
    calm = divergence([2.0, 1.5, 1.0])
    assert not calm.non_finite and calm.spikes == 0 and calm.max_spike == pytest.approx(0.75)
    assert math.isnan(divergence([1.0]).max_spike)


def test_measure_all_returns_every_metric_as_json() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=16, depth=3), parse_layout("relu | elu(0.5) | selu"),
                        (10,), 3)
    x, y = torch.randn(300, 10), torch.randint(0, 3, (300,))
    attrs = measure_all(model, x[:64], y[:64], x[64:], y[64:], "cpu",
                        train_loss_curve=[1.1, 0.9, 0.8], val_acc_curve=[0.4, 0.5, 0.52],
                        val_loss_curve=[1.0, 0.95, 0.9], latency_blocks=3,
                        latency_block_seconds=0.001, big_batch=256)
    assert list(attrs) == list(METRICS)
    json.dumps(attrs, allow_nan=False)  # storable as Optuna user attributes
    assert all(len(attrs[k]) == 3 for k in ("act_mean", "act_std", "dead_frac", "grad_norm"))
    assert attrs["lat_b1_ms"] > 0 and attrs["lat_big_batch"] == 256
    assert attrs["epochs_to_95"] == 2 and attrs["loss_spikes"] == 0
    assert attrs["nonfinite"] is False
    assert attrs["lat_b1_rel"] is None  # no reference given


def test_measure_all_with_a_reference_model() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ELU(), nn.Linear(8, 3))
    reference = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    attrs = measure_all(model, x, y, x, y, "cpu", latency_blocks=2,
                        latency_block_seconds=0.001, big_batch=64, reference=reference)
    assert attrs["lat_b1_rel"] > 0 and attrs["lat_big_rel"] > 0


def test_measure_all_without_latency_or_curves() -> None:
    model = _constant_preactivation(nn.ReLU(), -1.0)  # all dead: gradient ratio undefined
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    attrs = measure_all(model, x, y, x, y, "cpu", latency_blocks=0)
    assert list(attrs) == list(METRICS)
    json.dumps(attrs, allow_nan=False)
    assert attrs["lat_b1_ms"] is None and attrs["epochs_to_95"] is None
    assert attrs["grad_ratio"] is None and attrs["dead_frac_max"] == 1.0


class _Sites(nn.Module):
    """A module site, a shared module called twice and a functional call; the second call of
    the shared ReLU is fed by a constant pre-activation of -1 (zero weights, bias -1)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 8), nn.Linear(8, 6), nn.Linear(6, 3)
        self.first = nn.Tanh()
        self.act = nn.ReLU()
        with torch.no_grad():
            self.b.weight.zero_()
            self.b.bias.fill_(-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.first(self.a(x)))
        h = self.act(self.b(h))
        return self.c(torch.sigmoid(h))


def test_site_stats_are_keyed_by_site_in_execution_order() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    stats = {s.site: s for s in site_stats(_Sites(), x, y)}
    assert list(stats) == ["first", "act#0", "act#1", "sigmoid()"]
    # ReLU at a constant -1: every unit dead, output 0; the sigmoid after it sees 0: 0.5.
    assert stats["act#1"].dead_fraction == 1.0 and stats["act#1"].mean == 0.0
    assert stats["act#1"].units == 6
    assert stats["sigmoid()"].mean == pytest.approx(0.5)
    assert stats["act#0"].units == 8 and stats["act#0"].dead_fraction < 1.0


def test_site_stats_follow_apply_layout_by_call_and_in_the_rewritten_graph() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    model = apply_layout(_Sites(), {"act#1": "elu", "sigmoid()": "relu"}, example_input=x[:2])
    stats = {s.site: s for s in site_stats(model, x, y)}
    assert list(stats) == ["first", "act#0", "act#1", "sigmoid()"]
    # ELU at -1 is alive everywhere and outputs exp(-1) - 1; the ReLU after it is then dead.
    assert stats["act#1"].dead_fraction == 0.0
    assert stats["act#1"].mean == pytest.approx(math.exp(-1) - 1, abs=1e-6)
    assert stats["sigmoid()"].dead_fraction == 1.0
    # No gradient passes a dead ReLU: every site before it receives none.
    assert stats["sigmoid()"].grad_norm > 0
    assert stats["act#1"].grad_norm == stats["first"].grad_norm == 0.0


def test_measure_all_by_site_maps_sites_and_takes_the_ratio_first_over_last() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ELU(), nn.Linear(8, 8), nn.SELU(),
                          nn.Linear(8, 3))
    x, y = torch.randn(80, 4), torch.randint(0, 3, (80,))
    attrs = measure_all(model, x[:40], y[:40], x[40:], y[40:], "cpu", latency_blocks=2,
                        latency_block_seconds=0.001, big_batch=64, by_site=True)
    assert list(attrs) == list(METRICS)
    json.dumps(attrs, allow_nan=False)
    for key in ("act_mean", "act_std", "dead_frac", "grad_norm"):
        assert list(attrs[key]) == ["1", "3"]
    norms = attrs["grad_norm"]
    assert attrs["grad_ratio"] == pytest.approx(norms["1"] / norms["3"], rel=1e-4)
    assert attrs["dead_frac_max"] == max(attrs["dead_frac"].values())
    assert attrs["lat_b1_ms"] > 0 and attrs["robust_noise_0.1"] is not None
