"""FLORES perplexity per language: the sweep's and the benchmarks' evaluation.

A thin layer over ``hfprune.evaluation.perplexity`` that picks the first ``sentences`` lines of each
language's devtest file, so every language is scored on the same (parallel) content and a sweep can trade
precision for minutes.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..evaluation.perplexity import load_flores, perplexity


def flores_text(lang: str, sentences: int | None = None, data_dir: Any = None) -> str:
    lines = load_flores(lang, data_dir).splitlines()
    return "\n".join(lines[:sentences] if sentences else lines)


def flores_perplexities(
    model: nn.Module,
    tokenizer: Any,
    langs: list[str],
    *,
    sentences: int | None = None,
    context_length: int = 512,
    batch_size: int = 8,
    texts: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """``{lang: {"ppl", "bits_per_byte", "n_tokens"}}``; pass ``texts`` to skip re-reading the files."""
    texts = texts or {lang: flores_text(lang, sentences) for lang in langs}
    out = {}
    for lang in langs:
        result = perplexity(model, tokenizer, texts[lang], context_length=context_length, batch_size=batch_size)
        out[lang] = {"ppl": result.ppl, "bits_per_byte": result.bits_per_byte, "n_tokens": result.n_tokens}
    return out


def summarise(
    per_lang: dict[str, dict[str, float]], dense: dict[str, dict[str, float]] | None = None
) -> dict[str, float]:
    """Mean and worst-language perplexity, and (against ``dense``) mean and worst ratio to the dense model."""
    ppl = {lang: v["ppl"] for lang, v in per_lang.items()}
    row = {
        "mean_ppl": sum(ppl.values()) / len(ppl),
        "worst_ppl": max(ppl.values()),
        "worst_lang": max(ppl, key=ppl.get),
    }
    if dense:
        ratio = {lang: ppl[lang] / dense[lang]["ppl"] for lang in ppl}
        row.update(
            mean_ratio=sum(ratio.values()) / len(ratio),
            worst_ratio=max(ratio.values()),
            worst_ratio_lang=max(ratio, key=ratio.get),
        )
    return row
