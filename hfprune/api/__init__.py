"""The library API the CLI mirrors: :func:`prune` a model in memory, :func:`save_pruned`, :func:`prune_pretrained`.

>>> import hfprune
>>> result = hfprune.prune(model, tokenizer, method="wanda", sparsity=0.5, calibration="en:64,sw:64")
>>> result.sparsity, result.by_kind()

What to prune and how is one typed :class:`PruneSettings`; ``prune`` and ``prune_pretrained`` also take its
fields as keywords (and a method's parameters, such as ``percdamp=0.01``), checked against it by name.
"""

from .memory import prune
from .preparation import calibration_languages, calibration_set, check_sequence_length, trim_for_pruning
from .pretrained import prune_pretrained
from .saving import check_shard_size, save_pruned
from .settings import PruneResult, PruneSettings

__all__ = [
    "PruneResult",
    "PruneSettings",
    "calibration_languages",
    "calibration_set",
    "check_sequence_length",
    "check_shard_size",
    "prune",
    "prune_pretrained",
    "save_pruned",
    "trim_for_pruning",
]
