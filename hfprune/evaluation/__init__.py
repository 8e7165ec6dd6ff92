"""Per-language evaluation of (pruned) causal LMs: perplexity and zero-shot tasks, dense vs pruned."""

from .cache import ResultCache
from .perplexity import PerplexityResult, load_flores, perplexity
from .results import Comparison, EvalResult
from .runner import compare, evaluate_model
from .tasks import TASK_NAMES, TASKS

__all__ = [
    "TASKS",
    "TASK_NAMES",
    "Comparison",
    "EvalResult",
    "PerplexityResult",
    "ResultCache",
    "compare",
    "evaluate_model",
    "load_flores",
    "perplexity",
]
