"""Zero-shot multiple-choice accuracy of one task in one language.

Every choice is scored by the log-likelihood of its continuation; the prediction is the choice with the
highest score (``acc``) or the highest score per character of the choice text (``acc_norm``, as the
harness defines it). Accuracy and its standard error come from the ``ChoiceAccuracy`` metric module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import ChoiceAccuracy
from .prompts import Prompt
from .tasks import TaskSpec

#: Scores (context, continuation) pairs; :func:`hfprune.evaluation.scoring.loglikelihoods` bound to a model.
Scorer = Callable[[list[tuple[str, str]]], list[float]]


@dataclass(frozen=True)
class TaskScore:
    """Metrics of one task in one language, ``evaluate``-style names with ``_stderr`` companions."""

    metrics: dict[str, float]
    n: int
    predictions: dict[str, list[int]] = field(default_factory=dict, repr=False)


def build_prompts(spec: TaskSpec, docs: list[dict], lang: str) -> list[Prompt]:
    """Prompts for the rows the harness keeps."""
    return [spec.build(doc, lang) for doc in docs if spec.keep(doc)]


def score_prompts(spec: TaskSpec, prompts: list[Prompt], scorer: Scorer) -> TaskScore:
    """Score every choice of every prompt in one batch of requests, then compute the task's metrics."""
    requests = [(ctx, cont) for p in prompts for ctx, cont in zip(p.contexts, p.continuations)]
    flat = scorer(requests)
    golds, by_metric = [], {name: [] for name in spec.metrics}
    offset = 0
    for prompt in prompts:
        scores = flat[offset : offset + len(prompt.continuations)]
        offset += len(prompt.continuations)
        golds.append(prompt.gold)
        by_metric["acc"].append(_argmax(scores))
        if "acc_norm" in by_metric:
            by_metric["acc_norm"].append(_argmax([s / max(len(t), 1) for s, t in zip(scores, prompt.choice_texts)]))
    metrics: dict[str, float] = {}
    for name, predictions in by_metric.items():
        values = ChoiceAccuracy().compute(predictions=predictions, references=golds)
        metrics[name] = values["accuracy"]
        metrics[f"{name}_stderr"] = values["accuracy_stderr"]
    return TaskScore(metrics=metrics, n=len(prompts), predictions=by_metric)


def evaluate_task(spec: TaskSpec, docs: list[dict], lang: str, scorer: Scorer) -> TaskScore:
    """Accuracy (and ``acc_norm`` where the harness reports it) of ``scorer`` on ``docs``."""
    return score_prompts(spec, build_prompts(spec, docs, lang), scorer)


def _argmax(values: list[float]) -> int:
    """Index of the largest value; the first one on ties (as ``numpy.argmax``)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def model_scorer(model: Any, tokenizer: Any, **options: Any) -> Scorer:
    """A :data:`Scorer` that runs ``model`` (options go to :func:`~hfprune.evaluation.scoring.loglikelihoods`)."""
    from .scoring import loglikelihoods

    return lambda requests: loglikelihoods(model, tokenizer, requests, **options)
