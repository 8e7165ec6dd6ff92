"""The tiny trained model pruned 70% by magnitude has worse perplexity than dense in every language."""

import pytest

pytestmark = pytest.mark.slow


def test_magnitude_70_is_worse_in_every_language(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hfprune
    from hfprune.evaluation.runner import compare, evaluate_model
    from hfprune.tiny_model import LANGUAGES

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_safetensors=True).eval()
    options = dict(langs=list(LANGUAGES), tasks=["ppl"], limit=120, context_length=256, cache=False, progress=False)
    dense = evaluate_model(model, tokenizer, **options)
    hfprune.prune(model, method="magnitude", sparsity=0.7)
    pruned = evaluate_model(model, tokenizer, **options)
    rows = [r for r in compare(pruned, dense).rows if r.metric == "ppl"]
    assert {r.lang for r in rows} == set(LANGUAGES)
    assert all(r.pruned > r.dense for r in rows), [(r.lang, r.dense, r.pruned) for r in rows]
