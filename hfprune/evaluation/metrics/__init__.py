"""Local, offline ``evaluate`` metric modules (``evaluate`` ships no metric scripts offline)."""

from hfprune.evaluation.metrics.choice_accuracy import ChoiceAccuracy
from hfprune.evaluation.metrics.windowed_perplexity import WindowedPerplexity

__all__ = ["ChoiceAccuracy", "WindowedPerplexity"]
