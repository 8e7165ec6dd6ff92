"""Accuracy of multiple-choice predictions with its analytic standard error, as an ``evaluate`` metric.

Keeps ``evaluate``'s ``accuracy`` convention (``predictions``/``references`` -> ``{"accuracy": ...}``)
and adds ``accuracy_stderr``: the sample standard error of the mean of 0/1 hits, sqrt(p(1-p)/(n-1)),
which is what lm-evaluation-harness reports next to ``acc``.
"""

from __future__ import annotations

import math

import datasets
import evaluate


class ChoiceAccuracy(evaluate.Metric):
    """Share of items whose predicted choice index equals the gold index."""

    def __init__(self, **kwargs):
        kwargs.setdefault("keep_in_memory", True)
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Accuracy of multiple-choice predictions, with its standard error.",
            citation="",
            inputs_description="predictions: predicted choice indices; references: gold choice indices.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        n = len(references)
        if n == 0:
            return {"accuracy": float("nan"), "accuracy_stderr": float("nan")}
        hits = sum(int(p == r) for p, r in zip(predictions, references))
        accuracy = hits / n
        stderr = math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n > 1 else float("nan")
        return {"accuracy": accuracy, "accuracy_stderr": stderr}
