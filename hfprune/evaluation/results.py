"""Result objects of an evaluation and of a dense-vs-pruned comparison, each with ``to_dict()``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Metrics where lower is better; for every other metric higher is better.
LOWER_IS_BETTER = frozenset({"ppl", "bits_per_byte"})
#: Metrics counted in tokens: two models with different tokenizers (a trimmed vocabulary) cannot be compared on them.
PER_TOKEN_METRICS = frozenset({"ppl"})
#: Why a per-token metric has no change when the tokenizers differ (tables, JSON and cards say it).
TOKENIZERS_DIFFER = (
    "not comparable: the two models use different tokenizers, so their token perplexities count different "
    "tokens; compare bits_per_byte"
)


@dataclass
class TaskLanguageResult:
    """One task in one language: its metrics and where the data came from."""

    task: str
    lang: str
    metrics: dict[str, float]
    n: int
    split: str | None = None
    source: str | None = None
    data_sha256: str | None = None
    cached: bool = False
    seconds: float = 0.0


@dataclass
class Skipped:
    """A (task, language) pair that was asked for but not evaluated, and why."""

    task: str
    lang: str
    reason: str


@dataclass
class EvalResult:
    """Everything one model scored, with the model's hashes, the settings and the versions used."""

    model: dict[str, Any]
    settings: dict[str, Any]
    results: list[TaskLanguageResult]
    skipped: list[Skipped] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: the processes that scored (``hfprune.distributed.describe``): launcher and world size
    distributed: dict[str, Any] = field(default_factory=lambda: {"launcher": "none", "world_size": 1})

    def get(self, task: str, lang: str) -> TaskLanguageResult | None:
        """The result of ``task`` in ``lang``, if it was evaluated."""
        return next((r for r in self.results if r.task == task and r.lang == lang), None)

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class ChangeRow:
    """One metric of one task in one language, dense vs pruned."""

    task: str
    metric: str
    lang: str
    dense: float
    pruned: float
    #: why the two values cannot be compared (different tokenizers and a per-token metric), if they cannot
    not_comparable: str | None = None

    @property
    def absolute(self) -> float:
        return self.pruned - self.dense if self.not_comparable is None else math.nan

    @property
    def relative(self) -> float:
        return self.absolute / self.dense if self.dense and self.not_comparable is None else math.nan

    @property
    def degradation(self) -> float:
        """Relative change signed so that larger is worse, whatever the metric's direction."""
        return self.relative if self.metric in LOWER_IS_BETTER else -self.relative

    def to_dict(self) -> dict[str, Any]:
        return _clean({**asdict(self), "absolute": self.absolute, "relative": self.relative})


@dataclass
class MetricSummary:
    """Averages over languages of one task's metric, and the language that lost the most."""

    task: str
    metric: str
    dense_mean: float
    pruned_mean: float
    absolute_mean: float
    relative_mean: float
    worst_lang: str
    worst_relative: float

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class Comparison:
    """Dense and pruned results on the same data, with per-language changes and their summaries."""

    dense: EvalResult
    pruned: EvalResult
    rows: list[ChangeRow]
    summaries: list[MetricSummary]

    @property
    def tokenizers_differ(self) -> bool:
        """The two models tokenize differently (a trimmed vocabulary): per-token metrics do not compare."""
        before, after = self.dense.model.get("tokenizer_sha256"), self.pruned.model.get("tokenizer_sha256")
        return bool(before and after and before != after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pruned": self.pruned.to_dict(),
            "dense": self.dense.to_dict(),
            "changes": [row.to_dict() for row in self.rows],
            "summary": [summary.to_dict() for summary in self.summaries],
            **({"tokenizers_differ": TOKENIZERS_DIFFER} if self.tokenizers_differ else {}),
        }


def _clean(value: Any) -> Any:
    """NaN and infinities become ``None`` so the JSON is valid for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def is_results_file(path: Path) -> bool:
    """Whether ``path`` holds results ``hfprune eval`` wrote (a comparison, or one model's evaluation)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ({"pruned", "changes"} <= set(data) or {"model", "results"} <= set(data))
