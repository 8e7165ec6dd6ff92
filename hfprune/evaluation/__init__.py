"""Per-language evaluation of (pruned) causal LMs: perplexity and zero-shot tasks, dense vs pruned."""

from hfprune.evaluation.cache import ResultCache
from hfprune.evaluation.perplexity import PerplexityResult, load_flores, perplexity
from hfprune.evaluation.results import Comparison, EvalResult
from hfprune.evaluation.runner import compare, evaluate_model
from hfprune.evaluation.tasks import TASK_NAMES, TASKS

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
