"""Local, offline ``evaluate`` metric modules (``evaluate`` ships no metric scripts offline)."""

from hfprune.evaluation.metrics.accuracy import ChoiceAccuracy
from hfprune.evaluation.metrics.perplexity import WindowedPerplexity

__all__ = ["ChoiceAccuracy", "WindowedPerplexity"]
