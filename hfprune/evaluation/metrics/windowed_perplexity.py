"""Perplexity and bits per byte from per-window NLL sums, as an ``evaluate`` metric.

``evaluate``'s own ``perplexity`` loads a model by Hub id; ours takes what the scoring loop measured,
so the model stays in the caller's hands. The standard error treats windows as the sampling unit
(tokens within a window are not independent) with the ratio estimator of the mean NLL per token;
it carries over to perplexity by the delta method (se_ppl = ppl * se_nll).
"""

from __future__ import annotations

import math

import datasets
import evaluate


class WindowedPerplexity(evaluate.Metric):
    """Token perplexity, mean NLL and bits per byte over a document scored in windows."""

    def __init__(self, **kwargs):
        kwargs.setdefault("keep_in_memory", True)
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Perplexity and bits per byte from per-window NLL sums (natural log).",
            citation="",
            inputs_description=(
                "nll_sums: summed negative log-likelihood (nats) of the tokens scored in each window; "
                "n_tokens: how many tokens each window scored; n_bytes (keyword): UTF-8 bytes of the text."
            ),
            features=datasets.Features({"nll_sums": datasets.Value("float64"), "n_tokens": datasets.Value("int64")}),
        )

    def _compute(self, nll_sums, n_tokens, n_bytes: int) -> dict[str, float]:
        total_nll = float(sum(nll_sums))
        total_tokens = int(sum(n_tokens))
        mean_nll = total_nll / total_tokens
        se_nll = _ratio_stderr(nll_sums, n_tokens, mean_nll)
        perplexity = math.exp(mean_nll)
        bits_per_token = 1 / math.log(2)
        return {
            "perplexity": perplexity,
            "perplexity_stderr": perplexity * se_nll,
            "mean_nll": mean_nll,
            "mean_nll_stderr": se_nll,
            "bits_per_byte": total_nll * bits_per_token / n_bytes,
            "bits_per_byte_stderr": se_nll * total_tokens * bits_per_token / n_bytes,
            "nll_sum": total_nll,
            "n_tokens": total_tokens,
            "n_bytes": int(n_bytes),
        }


def _ratio_stderr(nll_sums, n_tokens, mean_nll: float) -> float:
    """Standard error of sum(nll)/sum(tokens) across windows; NaN with a single window."""
    k = len(n_tokens)
    if k < 2:
        return float("nan")
    mean_tokens = sum(n_tokens) / k
    residual = sum((nll - mean_nll * n) ** 2 for nll, n in zip(nll_sums, n_tokens))
    return math.sqrt(residual / (k * (k - 1))) / mean_tokens
