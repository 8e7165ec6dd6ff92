"""Local, offline ``evaluate`` metric modules (``evaluate`` ships no metric scripts offline)."""

from .choice_accuracy import ChoiceAccuracy
from .windowed_perplexity import WindowedPerplexity

__all__ = ["ChoiceAccuracy", "WindowedPerplexity"]
