"""Scores and masks on small tensors that can be checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hfprune.errors import InvalidMethodParameterError, InvalidSparsityError, InvalidStructureError, UnknownMethodError
from hfprune.models import PrunableLayer
from hfprune.pruning import masks
from hfprune.pruning.methods import available, get_method
from hfprune.pruning.sparsity_pattern import Structure, resolve_sparsity
from hfprune.pruning.stats import HESSIAN, SQ_SUM, LayerStats, StatsCollector


def _layer(weight: torch.Tensor) -> PrunableLayer:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    lin.weight.data.copy_(weight)
    return PrunableLayer("lin", "lin", lin)


def _stats(layer: PrunableLayer, x: torch.Tensor, needs=frozenset({SQ_SUM, HESSIAN})) -> LayerStats:
    collector = StatsCollector([layer], needs)
    with torch.no_grad(), collector.attached():
        collector.language = "en"
        layer.module(x)
    return collector.stats["lin"]


def test_wanda_scores_weight_times_activation_norm():
    # Column 0 has big weights but its input is almost silent; column 2 is the reverse.
    w = torch.tensor([[4.0, 1.0, 0.5, 2.0], [3.0, 2.0, 0.25, 1.0]])
    x = torch.tensor([[0.01, 1.0, 10.0, 1.0], [0.01, 1.0, 10.0, 1.0]])  # ||X_j|| = .01*sqrt2, sqrt2, 10sqrt2, sqrt2
    layer = _layer(w)
    stats = _stats(layer, x)
    torch.testing.assert_close(stats.norms(), x.norm(dim=0))
    score = get_method("wanda").score(w, stats)
    torch.testing.assert_close(score, w.abs() * x.norm(dim=0))
    mask = get_method("wanda").prune_layer(layer, stats, 0.5, Structure())
    # row 0 scores: 4*.014=.057, 1.41, 7.07, 2.83 -> drop cols 0,1 ; row 1: .042, 2.83, 3.54, 1.41 -> drop 0,3
    assert mask.tolist() == [[True, True, False, False], [True, False, False, True]]
    assert layer.weight.tolist() == [[0.0, 0.0, 0.5, 2.0], [0.0, 2.0, 0.25, 0.0]]


def test_magnitude_compares_across_the_layer():
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    layer = _layer(w)
    mask = get_method("magnitude").prune_layer(layer, None, 0.5, Structure())
    assert mask.tolist() == [[True, True, True, True], [False, False, False, False]]


def test_sparsegpt_reconstructs_better_than_wanda_on_the_same_data():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(32, 64, generator=gen)
    # correlated inputs, as real activations are: the case where OBS updates pay off
    x = torch.randn(512, 16, generator=gen) @ torch.randn(16, 64, generator=gen) + 0.1 * torch.randn(
        512, 64, generator=gen
    )
    dense_out = x @ w.t()
    errors = {}
    for name in ("wanda", "sparsegpt"):
        for structure in (Structure(), Structure(2, 4)):
            layer = _layer(w)
            stats = _stats(layer, x)
            mask = get_method(name).prune_layer(layer, stats, 0.5, structure)
            assert mask.float().mean().item() == pytest.approx(0.5)
            assert torch.all(layer.weight[mask] == 0)
            errors[name, str(structure)] = (x @ layer.weight.t() - dense_out).norm().item()
    assert errors["sparsegpt", "unstructured"] < 0.8 * errors["wanda", "unstructured"]
    assert errors["sparsegpt", "2:4"] < 0.8 * errors["wanda", "2:4"]


def test_sparsegpt_survives_dead_inputs():
    w = torch.randn(8, 16)
    x = torch.randn(64, 16)
    x[:, 3] = 0  # a channel that never fires makes H singular without the fix
    layer = _layer(w)
    mask = get_method("sparsegpt").prune_layer(layer, _stats(layer, x), 0.5, Structure())
    assert torch.isfinite(layer.weight).all() and mask.sum() == 64


def test_sparsegpt_factor_is_the_upper_cholesky_of_the_damped_inverse_hessian():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 24, generator=gen)  # 8 tokens, 24 channels: H is singular, damping makes it definite
    h = 2 * x.t() @ x / 8
    method = get_method("sparsegpt")
    upper = method._inverse_cholesky(h.clone(), "lin")
    damped = h.double() + method.percdamp * h.diagonal().mean().double() * torch.eye(24, dtype=torch.float64)
    assert upper.dtype == torch.float32 and torch.equal(upper, upper.triu())
    torch.testing.assert_close(upper.double().t() @ upper.double(), torch.linalg.inv(damped), rtol=1e-3, atol=1e-3)


def test_sparsegpt_explains_a_hessian_that_no_damping_rescues():
    from hfprune.errors import HessianNotPositiveDefiniteError

    h = torch.eye(6)
    h[2, 2] = float("nan")  # what a calibration batch with inf/nan activations produces
    with pytest.raises(HessianNotPositiveDefiniteError, match="lin: .*--percdamp"):
        get_method("sparsegpt")._inverse_cholesky(h, "lin")


def test_masks_count_exactly():
    scores = torch.rand(7, 24)
    assert int(masks.row_mask(scores, 0.25).sum(1).unique().item()) == 6
    assert int(masks.layer_mask(scores, 0.5).sum()) == 84
    nm = masks.nm_mask(scores, 3, 8).reshape(7, 3, 8).sum(-1)
    assert torch.all(nm == 3)
    assert masks.row_mask(scores, 0.0).sum() == 0


@pytest.mark.parametrize("text", ["4:4", "5:4", "0:4", "2-4", "a:b", "2:4:8"])
def test_bad_structures_are_refused(text):
    with pytest.raises(InvalidStructureError):
        Structure.parse(text)


def test_nm_must_divide_every_width():
    with pytest.raises(InvalidStructureError, match="width 30"):
        Structure(2, 4).check_widths([("a", 32), ("mlp.down", 30)])


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
def test_sparsity_outside_unit_interval_is_refused(value):
    with pytest.raises(InvalidSparsityError):
        resolve_sparsity(value, Structure())


def test_nm_implies_sparsity_and_refuses_a_contradiction():
    assert resolve_sparsity(None, Structure(2, 4)) == 0.5
    with pytest.raises(InvalidSparsityError, match="contradicts"):
        resolve_sparsity(0.7, Structure(2, 4))


def test_registry_lists_methods_and_rejects_unknown():
    assert {"magnitude", "wanda", "sparsegpt"} <= set(available())
    with pytest.raises(UnknownMethodError, match="available"):
        get_method("nope")
    with pytest.raises(InvalidMethodParameterError, match="--percdamp do not apply to method wanda"):
        get_method("wanda", percdamp=0.1)
    assert get_method("sparsegpt", percdamp=0.05).percdamp == 0.05
