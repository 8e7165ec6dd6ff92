"""RIA, SNIP, GraSP, M-Wanda and the layerwise profiles on tiny random models and hand-made statistics."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

import hfprune
from hfprune.calibration import CalibrationSet
from hfprune.cli.options import add_profile_options
from hfprune.cli.options import profile as profile_from_args
from hfprune.errors import InvalidMWandaParameterError, InvalidProfileError
from hfprune.models import PrunableLayer, all_prunable_layers
from hfprune.pruning.allocation import AllocationError, allocate, bounds, weighted_mean
from hfprune.pruning.dense_pass import block_key
from hfprune.pruning.gradients import gradients
from hfprune.pruning.methods import get_method
from hfprune.pruning.methods.mwanda import channel_importance
from hfprune.pruning.profiles import cross_lingual_agreement
from hfprune.pruning.stats import LayerStats

from .model_factory import VOCAB, forward, make_model

NEW_METHODS = ["ria", "snip", "grasp", "mwanda"]


@pytest.fixture(scope="module")
def calib() -> CalibrationSet:
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(4, VOCAB, (6, 16), generator=gen)
    return CalibrationSet.from_tensors(ids, ["en", "en", "sw", "sw", "zh", "zh"])


def _mask_bytes(model: nn.Module) -> bytes:
    return b"".join((layer.weight == 0).numpy().tobytes() for layer in all_prunable_layers(model))


# --- every new method: exact per-row sparsity, deterministic masks, a model that still runs ----------
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("method", NEW_METHODS)
def test_new_methods_prune_each_row_exactly_and_deterministically(arch, method, calib):
    masks = []
    for _ in range(2):
        model = make_model(arch, seed=2)
        result = hfprune.prune(model, method=method, sparsity=0.5, calibration=calib, batch_size=2)
        targets = {report.name: report.target for report in result.layers}  # M-Wanda's own profile varies them
        for layer in all_prunable_layers(model):
            expected = int(layer.in_features * targets[layer.name])
            assert torch.all((layer.weight == 0).sum(1) == expected), (method, layer.name)
        assert torch.isfinite(forward(model, calib.input_ids[:2])).all()
        masks.append(_mask_bytes(model))
    assert masks[0] == masks[1]


@pytest.mark.parametrize("method", NEW_METHODS)
def test_new_methods_support_nm(method, calib):
    model = make_model("qwen2")
    hfprune.prune(model, method=method, sparsity=None, structure="2:4", calibration=calib, batch_size=3)
    for layer in all_prunable_layers(model):
        assert torch.all((layer.weight == 0).reshape(layer.out_features, -1, 4).sum(-1) == 2), layer.name


# --- M-Wanda ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "gemma3", "bloom"])
def test_mwanda_with_one_language_and_switches_off_is_wanda(arch, calib):
    one = CalibrationSet.from_tensors(calib.input_ids, ["sw"] * len(calib))
    masks = {}
    for method, params in (("wanda", {}), ("mwanda", {"lam": 0.0, "prob": 0.0, "layerwise": 0.0, "equalize": 0.0})):
        model = make_model(arch, seed=4)
        hfprune.prune(model, method=method, sparsity=0.6, calibration=one, batch_size=2, **params)
        masks[method] = _mask_bytes(model)
    assert masks["mwanda"] == masks["wanda"]


def test_mwanda_switches_change_the_mask_with_several_languages(calib):
    masks = {}
    for label, params in {
        "wanda": None,
        "off": {"lam": 0.0, "prob": 0.0, "layerwise": 0.0, "equalize": 0.0},
        "lambda": {"lam": 2.0, "prob": 0.0, "layerwise": 0.0, "equalize": 0.0},
        "prob": {"lam": 0.0, "prob": 2.0, "layerwise": 0.0, "equalize": 0.0},
        "layerwise": {"lam": 0.0, "prob": 0.0, "layerwise": 0.1, "equalize": 0.0},
        "equalize": {"lam": 0.0, "prob": 0.0, "layerwise": 0.0, "equalize": 1.0},
    }.items():
        model = make_model("llama", seed=5)
        method = "wanda" if params is None else "mwanda"
        result = hfprune.prune(model, method=method, sparsity=0.5, calibration=calib, batch_size=2, **(params or {}))
        masks[label] = _mask_bytes(model)
        if label == "layerwise":
            assert result.sparsity_profile["profile"] == "crosslingual"
            assert len(set(round(l.target, 6) for l in result.layers)) > 1
    for label in ("lambda", "prob", "layerwise", "equalize"):
        assert masks[label] != masks["off"], label


def _stats(
    sq: dict[str, list[float]], tokens: dict[str, int], fires: dict[str, list[float]] | None = None
) -> LayerStats:
    return LayerStats(
        sq_sum={k: torch.tensor(v) for k, v in sq.items()},
        tokens=dict(tokens),
        fires={k: torch.tensor(v) for k, v in (fires or {}).items()},
    )


def test_mwanda_channel_importance_matches_the_documented_formula():
    # en has 4 tokens, sw 1: T = 5, so s_en = sqrt(sq_en * 5/4), s_sw = sqrt(sq_sw * 5)
    stats = _stats({"en": [4.0, 16.0], "sw": [1.0, 0.0]}, {"en": 4, "sw": 1}, {"en": [1.0, 2.0], "sw": [1.0, 0.0]})
    s_en = torch.tensor([4.0 * 5 / 4, 16.0 * 5 / 4]).sqrt()
    s_sw = torch.tensor([1.0 * 5, 0.0]).sqrt()
    mu = ((s_en**2 + s_sw**2) / 2).sqrt()
    sd = (s_en - s_sw).abs() / 2  # population std of two values
    torch.testing.assert_close(channel_importance(stats, 0.0, 0.0), mu)
    torch.testing.assert_close(channel_importance(stats, 0.7, 0.0), mu + 0.7 * sd)
    f_en, f_sw = torch.tensor([1 / 4, 2 / 4]), torch.tensor([1 / 1, 0 / 1])
    p = torch.maximum(f_en, f_sw) - (f_en + f_sw) / 2
    torch.testing.assert_close(channel_importance(stats, 0.7, 3.0), (mu + 0.7 * sd) * (1 + 3.0 * p))


def test_mwanda_balances_languages_where_wanda_counts_tokens():
    # channel 0 is used by en only, channel 1 by sw only; en has 9x the tokens
    stats = _stats({"en": [9.0, 0.0], "sw": [0.0, 1.0]}, {"en": 9, "sw": 1})
    wanda = stats.norms()
    assert wanda[0] > wanda[1]
    balanced = channel_importance(stats, 0.0, 0.0)
    torch.testing.assert_close(balanced[0], balanced[1])


def test_mwanda_equalize_gives_each_language_the_same_energy():
    # sw's activations are 100x weaker overall; channel 0 matters to en, channel 1 to sw
    stats = _stats({"en": [8.0, 2.0], "sw": [0.01, 0.07]}, {"en": 5, "sw": 5})
    off = channel_importance(stats, 0.0, 0.0)
    assert off[0] > off[1]  # en's energy decides
    full = channel_importance(stats, 0.0, 0.0, equalize=1.0)
    # both scaled to the mean energy E = (5 + 0.04) / 2; then mu = sqrt(sum_l of the scaled values), T/T_l = 2, L = 2
    energy = (5.0 + 0.04) / 2
    expected = (torch.tensor([8.0, 2.0]) * energy / 5 + torch.tensor([0.01, 0.07]) * energy / 0.04).sqrt()
    torch.testing.assert_close(full, expected)
    assert full[1] > full[0]  # sw's channel now counts as much as en's
    stronger = channel_importance(
        _stats({"en": [8.0, 2.0], "sw": [1.0, 7.0]}, {"en": 5, "sw": 5}), 0.0, 0.0, equalize=1.0
    )
    torch.testing.assert_close(stronger / stronger[0], full / full[0])  # a language's overall scale no longer matters


@pytest.mark.parametrize(
    "params", [{"lam": -1.0}, {"prob": float("nan")}, {"layerwise": 1.0}, {"equalize": 1.5}, {"equalize": -0.1}]
)
def test_mwanda_refuses_switches_out_of_range(params):
    with pytest.raises(InvalidMWandaParameterError, match="--mw-"):
        get_method("mwanda", **params)


# --- RIA, SNIP, GraSP scores --------------------------------------------------------------------------
def test_ria_score_is_relative_importance_times_root_norm():
    w = torch.tensor([[1.0, -3.0], [2.0, 2.0]])
    stats = _stats({"en": [4.0, 16.0]}, {"en": 2})
    expected = (
        torch.tensor([[1 / 4 + 1 / 3, 3 / 4 + 3 / 5], [2 / 4 + 2 / 3, 2 / 4 + 2 / 5]]) * torch.tensor([2.0, 4.0]).sqrt()
    )
    torch.testing.assert_close(get_method("ria").score(w, stats), expected)
    torch.testing.assert_close(
        get_method("ria", alpha=1.0).score(w, stats),
        expected / torch.tensor([2.0, 4.0]).sqrt() * torch.tensor([2.0, 4.0]),
    )


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_gradient_pass_matches_autograd_in_out_in_orientation(arch, calib):
    model = make_model(arch, seed=1)
    layers = all_prunable_layers(model)
    grads, hess = gradients(model, layers, calib, batch_size=4, hessian_gradient=True)
    assert all(p.requires_grad and p.grad is None for p in model.parameters()), "trainability restored"
    model.zero_grad()
    total = sum(model(input_ids=ids, labels=ids).loss * ids.shape[0] for _, ids in calib.batches(4))
    total.backward()
    for layer in layers:
        expected = layer.module.weight.grad
        expected = expected.t() if layer.transposed else expected
        torch.testing.assert_close(grads[layer.name], expected, rtol=1e-4, atol=1e-6)
        assert hess[layer.name].shape == (layer.out_features, layer.in_features)
    w = layers[0].weight.float()
    stats = LayerStats(grad=grads[layers[0].name], hess_grad=hess[layers[0].name])
    torch.testing.assert_close(get_method("snip").score(w, stats), (w * grads[layers[0].name]).abs())
    torch.testing.assert_close(get_method("grasp").score(w, stats), w * hess[layers[0].name])


# --- allocation and profiles --------------------------------------------------------------------------
@pytest.mark.parametrize("target,delta", [(0.5, 0.08), (0.7, 0.2), (0.05, 0.1), (0.9, 0.15)])
def test_allocation_mean_is_the_target_and_stays_in_bounds(target, delta):
    gen = torch.Generator().manual_seed(int(target * 100))
    importance = torch.rand(12, generator=gen).tolist()
    params = torch.randint(1, 1000, (12,), generator=gen).tolist()
    sparsity = allocate(importance, params, target, delta)
    assert weighted_mean(sparsity, params) == pytest.approx(target, abs=1e-9)
    lo, hi = bounds(target, delta)
    assert all(lo - 1e-12 <= s <= hi + 1e-12 for s in sparsity)
    order = sorted(range(12), key=lambda i: importance[i])
    assert all(sparsity[a] >= sparsity[b] - 1e-12 for a, b in zip(order, order[1:]))  # important: less sparse
    assert max(sparsity) - min(sparsity) > 0


def test_allocation_is_uniform_without_spread_or_delta():
    assert allocate([1.0, 1.0, 1.0], [1, 2, 3], 0.5, 0.1) == [0.5] * 3
    assert allocate([1.0, 2.0], [1, 1], 0.5, 0.0) == [0.5, 0.5]
    with pytest.raises(AllocationError):
        allocate([1.0], [1, 2], 0.5, 0.1)


@pytest.mark.parametrize("profile", ["owl", "crosslingual"])
@pytest.mark.parametrize("method", ["wanda", "magnitude", "ria"])
def test_profiles_keep_the_mean_over_prunable_weights_at_the_target(profile, method, calib):
    model = make_model("gemma3", seed=3)
    result = hfprune.prune(model, method=method, sparsity=0.5, calibration=calib, batch_size=2, profile=profile)
    targets = {layer.name: layer.target for layer in result.layers}
    sizes = {layer.name: layer.shape[0] * layer.shape[1] for layer in result.layers}
    mean = sum(targets[n] * sizes[n] for n in targets) / sum(sizes.values())
    assert mean == pytest.approx(0.5, abs=1e-9)
    assert all(0.42 - 1e-9 <= t <= 0.58 + 1e-9 for t in targets.values())
    assert len({round(t, 9) for t in targets.values()}) > 1, "a profile over distinct blocks should not be uniform"
    assert result.sparsity == pytest.approx(0.5, abs=0.01)  # row rounding only
    blocks = {}
    for layer in all_prunable_layers(model):
        blocks.setdefault(block_key(layer), set()).add(round(targets[layer.name], 9))
    assert all(len(v) == 1 for v in blocks.values()), "one sparsity per block"


def test_crosslingual_profile_is_uniform_with_one_language(calib):
    one = CalibrationSet.from_tensors(calib.input_ids, ["en"] * len(calib))
    result = hfprune.prune(make_model("llama"), method="wanda", sparsity=0.5, calibration=one, profile="crosslingual")
    assert {layer.target for layer in result.layers} == {0.5}


def test_cross_lingual_agreement_on_hand_made_statistics():
    same = _stats({"en": [1.0, 4.0, 9.0], "sw": [2.0, 8.0, 18.0]}, {"en": 1, "sw": 2})
    assert cross_lingual_agreement(same) == pytest.approx(1.0)
    opposite = _stats({"en": [1.0, 4.0], "sw": [4.0, 1.0]}, {"en": 1, "sw": 1})
    assert cross_lingual_agreement(opposite) == pytest.approx(-1.0)


def test_profiles_refuse_conflicts(calib):
    # a profile the user names replaces the method's own layerwise part
    result = hfprune.prune(
        make_model("llama"), method="mwanda", layerwise=0.1, sparsity=0.5, calibration=calib, profile="owl"
    )
    assert result.sparsity_profile["profile"] == "owl"
    with pytest.raises(InvalidProfileError, match="N:M"):
        hfprune.prune(
            make_model("llama"), method="wanda", sparsity=None, structure="2:4", calibration=calib, profile="owl"
        )
    with pytest.raises(InvalidProfileError, match="unknown"):
        hfprune.prune(make_model("llama"), method="wanda", sparsity=0.5, calibration=calib, profile="steep")


def test_profile_arguments_parse_into_profiles():
    parser = argparse.ArgumentParser()
    add_profile_options(parser)
    assert profile_from_args(parser.parse_args([])) is None
    owl = profile_from_args(parser.parse_args(["--sparsity-profile", "owl", "--owl-m", "7", "--owl-lambda", "0.1"]))
    assert (owl.name, owl.m, owl.delta) == ("owl", 7.0, 0.1)
    assert profile_from_args(parser.parse_args(["--sparsity-profile", "crosslingual"])).delta == 0.08
    with pytest.raises(InvalidProfileError, match="need --sparsity-profile"):
        profile_from_args(parser.parse_args(["--owl-m", "3"]))


def test_reused_first_block_inputs_give_the_same_masks(calib):
    cache: dict = {}
    masks = []
    for use_cache in (None, cache, cache):
        model = make_model("llama", seed=6)
        from hfprune.pruning.engine import BlockwiseEngine, Pruner
        from hfprune.pruning.sparsity_pattern import Structure

        pruner = Pruner(get_method("wanda"), sparsity=0.5, structure=Structure())
        engine = BlockwiseEngine(
            model, pruner, calibration=calib, device=torch.device("cpu"), batch_size=2, input_cache=use_cache
        )
        engine.run()
        masks.append(_mask_bytes(model))
    assert cache and masks[0] == masks[1] == masks[2]


def test_firing_counts_are_tokens_above_the_token_rms():
    from hfprune.pruning.stats import FIRES, SQ_SUM, StatsCollector

    lin = nn.Linear(3, 2, bias=False)
    layer = PrunableLayer("lin", "lin", lin)
    x = torch.tensor([[3.0, 0.0, 0.0], [1.0, 1.0, -1.0], [0.0, -2.0, 2.0]])  # token RMS: 1.73, 1, 1.63
    collector = StatsCollector([layer], frozenset({SQ_SUM, FIRES}))
    with torch.no_grad(), collector.attached():
        collector.language = "sw"
        lin(x)
    stats = collector.stats["lin"]
    # token 0: only channel 0 (3 > 1.73); token 1: nothing exceeds 1 strictly; token 2: channels 1 and 2
    assert stats.fires["sw"].tolist() == [1.0, 1.0, 1.0]
    torch.testing.assert_close(stats.fire_rate("sw"), torch.full((3,), 1 / 3))


def test_dense_pass_records_every_block_and_changes_no_weight(calib):
    from hfprune.pruning.dense_pass import collect_dense

    model = make_model("mt5")
    before = [layer.weight.clone() for layer in all_prunable_layers(model)]
    blocks = collect_dense(model, calib, summarise=lambda layer, stats: stats.total_tokens, batch_size=2)
    assert list(blocks) == ["encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"]
    assert all(b.value and all(n == calib.input_ids.numel() for _, n in b.value) for b in blocks.values())
    assert sum(b.params for b in blocks.values()) == sum(w.numel() for w in before)
    assert all(torch.equal(w, layer.weight) for w, layer in zip(before, all_prunable_layers(model)))


def test_hessian_gradient_product_matches_finite_differences():
    model = make_model("llama").double()
    gen = torch.Generator().manual_seed(0)
    calib = CalibrationSet.from_tensors(torch.randint(4, VOCAB, (2, 12), generator=gen), ["en", "en"])
    layers = all_prunable_layers(model)
    g, hg = gradients(model, layers, calib, batch_size=2, hessian_gradient=True)
    eps = 1e-4

    def gradient_at(sign: float) -> dict[str, torch.Tensor]:  # dL/dW at W + sign * eps * g
        for layer in layers:
            layer.module.weight.data += sign * eps * g[layer.name].double()
        out, _ = gradients(model, layers, calib, batch_size=2)
        for layer in layers:
            layer.module.weight.data -= sign * eps * g[layer.name].double()
        return out

    plus, minus = gradient_at(1.0), gradient_at(-1.0)
    for layer in layers:
        finite = (plus[layer.name] - minus[layer.name]) / (2 * eps)
        assert (finite - hg[layer.name]).norm() <= 1e-3 * finite.norm(), layer.name
