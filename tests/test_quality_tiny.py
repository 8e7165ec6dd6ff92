"""Pruning quality on a real (tiny, trained) multilingual model.

The model is the project's own 2-layer Llama trained on the shared calibration corpora of eight languages
(``hfprune.tiny_model``); perplexity is measured on FLORES-200 devtest, which it never saw.

What holds on this model, and is asserted here:
- every method at 60% costs perplexity in every language;
- SparseGPT beats magnitude pruning on mean FLORES perplexity by a wide margin;
- Wanda beats magnitude on the objective it optimises, each layer's output reconstruction error on the
  calibration inputs, summed over the layers.
What does *not* hold on this model: Wanda beating magnitude end to end. Its activations have few outlier
channels (max/median channel norm 1.3-1.9 for q/k/v/gate/up inputs), so Wanda's activation term carries
little information and its mean FLORES perplexity lands within 1% of magnitude's (measured: 169.8 vs 168.6
at 60%). ``benchmarks/bench_methods.py`` records the numbers.
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
    for method in ("magnitude", "sparsegpt"):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        hfprune.prune(model, tokenizer, method=method, sparsity=0.6, calibration=MIX, seqlen=CONTEXT, seed=0)
        out[method] = _flores_ppl(model, tokenizer)
    return out


def test_pruning_costs_perplexity_in_every_language(results):
    for method in ("magnitude", "sparsegpt"):
        for lang in LANGUAGES:
            assert results[method][lang] > results["dense"][lang], (method, lang, results)


def test_sparsegpt_beats_magnitude_at_60_percent(results):
    mean = {name: statistics.fmean(per_lang.values()) for name, per_lang in results.items()}
    assert mean["sparsegpt"] < 0.97 * mean["magnitude"], mean


def test_wanda_reconstructs_layers_better_than_magnitude(tiny_model_dir, tokenizer):
    """Sum over layers of ||XW^T - XW'^T|| / ||XW^T|| on the dense model's calibration inputs, at 60%."""
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
            total[name] += ((x @ w.masked_fill(mask, 0).t() - y).norm() / y.norm()).item()
    assert total["wanda"] < total["magnitude"], total
