"""Calibration pipelines (sequential vs independent), activation offload, and shared accumulators."""

from __future__ import annotations

import pytest
import torch

import hfprune
from hfprune.calibration import CalibrationSet
from hfprune.errors import InvalidPipelineError
from hfprune.models import all_prunable_layers
from hfprune.pruning.methods.wanda import Wanda
from hfprune.pruning.stats import HESSIAN, SQ_SUM, StatsCollector

from .model_factory import VOCAB, dense_statistics, forward, make_model


@pytest.fixture(scope="module")
def calib() -> CalibrationSet:
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(4, VOCAB, (4, 24), generator=gen)
    return CalibrationSet.from_tensors(ids, ["en", "en", "sw", "sw"])


def _stats_seen(monkeypatch, model, calib, pipeline: str) -> dict:
    seen = {}
    original = Wanda.prune_layer

    def spy(self, layer, stats, sparsity, structure):
        seen[layer.name] = {lang: t.clone() for lang, t in stats.sq_sum.items()}
        return original(self, layer, stats, sparsity, structure)

    monkeypatch.setattr(Wanda, "prune_layer", spy)
    result = hfprune.prune(model, method="wanda", sparsity=0.5, calibration=calib, batch_size=2, pipeline=pipeline)
    assert result.pipeline == pipeline and result.to_dict()["pipeline"] == pipeline
    return seen


def _matches(got: dict, ref) -> bool:
    return all(torch.allclose(got[lang], ref.sq_sum[lang], rtol=1e-4, atol=1e-4) for lang in ref.sq_sum)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "mt5"])
def test_independent_pipeline_calibrates_every_block_on_dense_inputs(arch, calib, monkeypatch):
    reference = dense_statistics(make_model(arch), calib)
    seen = _stats_seen(monkeypatch, make_model(arch), calib, "independent")
    assert set(seen) == set(reference)
    mismatched = [name for name, ref in reference.items() if not _matches(seen[name], ref)]
    assert mismatched == []


def test_sequential_pipeline_sees_pruned_outputs_of_earlier_blocks(calib, monkeypatch):
    """The counterpart: after block 0 is pruned, block 1's statistics are no longer the dense ones."""
    reference = dense_statistics(make_model("llama"), calib)
    seen = _stats_seen(monkeypatch, make_model("llama"), calib, "sequential")
    first = [name for name in reference if ".layers.0." in name]
    later = [name for name in reference if ".layers.0." not in name]
    assert first and later
    assert all(_matches(seen[name], reference[name]) for name in first)
    assert not any(_matches(seen[name], reference[name]) for name in later)


def test_independent_masks_equal_sequential_in_block_zero_only(calib):
    masks = {}
    for pipeline in ("sequential", "independent"):
        model = make_model("qwen2", seed=4)
        hfprune.prune(model, method="wanda", sparsity=0.5, calibration=calib, pipeline=pipeline)
        masks[pipeline] = {layer.name: layer.weight == 0 for layer in all_prunable_layers(model)}
    for name, mask in masks["independent"].items():
        assert mask.float().mean().item() == pytest.approx(0.5, abs=1e-9)
        same = torch.equal(mask, masks["sequential"][name])
        assert same == (".layers.0." in name), name


def test_offload_keeps_the_masks(calib):
    masks = []
    for offload in (False, True):
        model = make_model("llama", seed=5)
        hfprune.prune(model, method="sparsegpt", sparsity=0.5, calibration=calib, offload=offload)
        masks.append(torch.cat([(layer.weight == 0).flatten() for layer in all_prunable_layers(model)]))
    assert torch.equal(masks[0], masks[1])


def test_unknown_pipeline_is_refused(calib):
    with pytest.raises(InvalidPipelineError, match="independent"):
        hfprune.prune(make_model("llama"), method="wanda", sparsity=0.5, calibration=calib, pipeline="parallel")


def test_layers_reading_one_input_share_one_accumulator(calib, monkeypatch):
    """q/k/v and gate/up: one X^T X each, computed once per batch, not once per linear."""
    model = make_model("llama")
    layers = [layer for layer in all_prunable_layers(model) if ".layers.0." in layer.name]
    calls = []
    original = StatsCollector._accumulate

    def counting(self, stats, inp):
        calls.append(inp.shape)
        return original(self, stats, inp)

    monkeypatch.setattr(StatsCollector, "_accumulate", counting)
    collector = StatsCollector(layers, frozenset({SQ_SUM, HESSIAN}))
    with torch.no_grad(), collector.attached():
        for lang, ids in calib.batches(2):
            collector.language = lang
            forward(model, ids)
            collector.end_batch()
    by_kind = {layer.kind: collector.stats[layer.name] for layer in layers}
    assert by_kind["q_proj"] is by_kind["k_proj"] is by_kind["v_proj"]
    assert by_kind["gate_proj"] is by_kind["up_proj"]
    assert by_kind["o_proj"] is not by_kind["q_proj"] and by_kind["down_proj"] is not by_kind["gate_proj"]
    batches = len(list(calib.batches(2)))
    assert len(calls) == 4 * batches  # qkv, o, gate/up, down
    assert by_kind["q_proj"].total_tokens == calib.input_ids.numel()
    shared = by_kind["q_proj"]
    # one accumulator, counted once: diag(X^T X) is exactly the per-channel sum of squares
    torch.testing.assert_close(shared.xtx.diagonal(), shared.pooled_sq_sum(), rtol=1e-5, atol=1e-4)


def test_cli_records_the_pipeline(tmp_path):
    import json

    from hfprune.cli import main

    from .model_factory import make_tokenizer, save_model_folder

    texts = ["the quick brown fox jumps over the lazy dog " * 40] * 4
    tokenizer = make_tokenizer(texts)
    src = save_model_folder(make_model("llama"), tokenizer, tmp_path / "dense")
    calib_dir = tmp_path / "calib"
    calib_dir.mkdir()
    (calib_dir / "en.txt").write_text("\n".join(texts))
    out = tmp_path / "out"
    code = main(
        [
            "prune",
            str(src),
            "--method",
            "wanda",
            "--sparsity",
            "0.5",
            "--calib",
            "en:2",
            "--seqlen",
            "16",
            "--calib-source",
            str(calib_dir),
            "--pipeline",
            "independent",
            "--out",
            str(out),
            "--quiet",
            "--json",
        ]
    )
    assert code == 0
    record = json.loads((out / "hfprune.json").read_text())
    assert record["pipeline"] == "independent"
