"""Pruning quality on a real (tiny, trained) multilingual model.

The model is the project's own 2-layer Llama trained on the shared calibration corpora of eight languages
(``hfprune.tiny_model``); perplexity is measured on FLORES-200 devtest, which it never saw.

What holds on this model, and is asserted here:
- every method at 60% costs perplexity in every language;
- Wanda and SparseGPT both beat magnitude pruning on mean FLORES perplexity;
- Wanda beats magnitude on the objective it optimises, each output row's reconstruction error on the
  calibration inputs (measured: 2.61 vs 3.27, summed over layers of the mean over rows).
Wanda's end-to-end win rests on the model's outlier channels (max/median channel norm 13-45 at the linear
inputs, as in real LLMs), which ``hfprune.tiny_model`` gives it by an exact reparameterisation after training;
without them (max/median 1.3-4.5) Wanda landed within 1% of magnitude (171.5 vs 170.1). Measured on the current
model: magnitude 181.6, Wanda 173.4, SparseGPT 161.4 (dense 158.9). ``benchmarks/bench_methods.py`` records the numbers.
"""

from __future__ import annotations

import statistics

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import hfprune
from hfprune.calibration import build_calibration, open_source
from hfprune.evaluation.perplexity import load_flores, perplexity
from hfprune.models import all_prunable_layers
from hfprune.pruning import masks
from hfprune.tiny_model import LANGUAGES

SENTENCES = 250  # of FLORES devtest per language: enough for stable numbers, quick on 2 cores
CONTEXT = 256
MIX = ",".join(f"{lang}:8" for lang in LANGUAGES)


def _flores_ppl(model, tokenizer) -> dict[str, float]:
    out = {}
    for lang in LANGUAGES:
        text = "\n".join(load_flores(lang).splitlines()[:SENTENCES])
        out[lang] = perplexity(model, tokenizer, text, context_length=CONTEXT, batch_size=16).ppl
    return out


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def results(tiny_model_dir, tokenizer) -> dict[str, dict[str, float]]:
    out = {"dense": _flores_ppl(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer)}
    for method in ("magnitude", "wanda", "sparsegpt"):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        hfprune.prune(model, tokenizer, method=method, sparsity=0.6, calibration=MIX, seqlen=CONTEXT, seed=0)
        out[method] = _flores_ppl(model, tokenizer)
    return out


def test_pruning_costs_perplexity_in_every_language(results):
    for method in ("magnitude", "wanda", "sparsegpt"):
        for lang in LANGUAGES:
            assert results[method][lang] > results["dense"][lang], (method, lang, results)


def test_sparsegpt_beats_magnitude_at_60_percent(results):
    mean = {name: statistics.fmean(per_lang.values()) for name, per_lang in results.items()}
    assert mean["sparsegpt"] < 0.97 * mean["magnitude"], mean


def test_wanda_beats_magnitude_at_60_percent(results):
    mean = {name: statistics.fmean(per_lang.values()) for name, per_lang in results.items()}
    assert mean["wanda"] < 0.98 * mean["magnitude"], mean


def test_wanda_reconstructs_layers_better_than_magnitude(tiny_model_dir, tokenizer):
    """Per layer, the mean over output rows i of ||X w_i - X w'_i|| / ||X w_i||, summed over layers, at 60%.

    Wanda's objective is each output row's error (it ranks weights within a row). Relative per row, so the
    few output rows that feed outlier channels (10x larger outputs) do not outweigh all the others.
    """
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    calib = build_calibration(tokenizer, open_source(None), MIX, seqlen=CONTEXT, seed=0)
    layers = all_prunable_layers(model)
    inputs: dict[str, list[torch.Tensor]] = {layer.name: [] for layer in layers}
    hooks = [
        layer.module.register_forward_hook(
            lambda mod, args, out, name=layer.name: inputs[name].append(args[0].reshape(-1, args[0].shape[-1]))
        )
        for layer in layers
    ]
    with torch.no_grad():
        for _, ids in calib.batches(16):
            model(input_ids=ids)
    for hook in hooks:
        hook.remove()
    total = {"magnitude": 0.0, "wanda": 0.0}
    for layer in layers:
        x = torch.cat(inputs[layer.name])
        w = layer.weight.detach()
        y = x @ w.t()
        chosen = {
            "magnitude": masks.layer_mask(w.abs(), 0.6),
            "wanda": masks.row_mask(w.abs() * x.norm(dim=0), 0.6),
        }
        for name, mask in chosen.items():
            total[name] += ((x @ w.masked_fill(mask, 0).t() - y).norm(dim=0) / y.norm(dim=0)).mean().item()
    assert total["wanda"] < total["magnitude"], total
