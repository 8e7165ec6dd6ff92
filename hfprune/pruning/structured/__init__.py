"""Structured pruning: remove MLP neurons, attention heads and whole blocks, chosen by every calibration language.

Read in the order data flows: ``spec`` (``width:F``, ``heads:K``, ``depth:K``) -> ``architecture`` / ``plan`` (what
the model's config can express, how many go) -> ``importance`` (per-language scores, ``--lang-agg``) ->
``visitors`` (the engine's hooks) -> ``surgery`` (smaller tensors, rewritten config) and ``refit`` (least-squares
output projections) -> ``run`` (the whole job on a loaded model).
"""

from .importance import LANG_AGGS, check_lang_agg
from .plan import Plan, plan_removal
from .run import StructuredReport, parameter_counts, prune_structured
from .spec import StructuredSpec, is_structured, parse_structure

__all__ = [
    "LANG_AGGS",
    "Plan",
    "StructuredReport",
    "StructuredSpec",
    "check_lang_agg",
    "is_structured",
    "parameter_counts",
    "parse_structure",
    "plan_removal",
    "prune_structured",
]
