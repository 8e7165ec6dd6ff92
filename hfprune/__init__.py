"""hfprune: one-shot pruning of multilingual LLMs with a calibration-language mix.

The public face: :func:`prune` (in memory), :func:`save_pruned`, :func:`prune_pretrained` (load, prune,
save), :class:`ModelSource` (where the model comes from and how it loads), :class:`PruneSettings` (what
to prune and how), vocabulary trimming (:func:`trim_vocab`,
:func:`trim_vocab_pretrained`, :class:`VocabSettings`), calibration (:class:`Mix`, :func:`build_calibration`),
:func:`methods` (what is registered), and the error classes in :mod:`hfprune.errors`. Evaluation, cards and
publishing live in :mod:`hfprune.evaluation`, :mod:`hfprune.card` and :mod:`hfprune.hub`.
"""

from __future__ import annotations

from .api import PruneResult, PruneSettings, prune, prune_pretrained, save_pruned
from .calibration import (
    CalibrationSet,
    Mix,
    SourceSpec,
    build_calibration,
    open_source,
    parse_mix,
)
from .constants import VERSION as __version__
from .models import ModelSource
from .pruning.methods import available as _available
from .vocab import VocabSettings, VocabTrimResult, trim_vocab, trim_vocab_pretrained


def methods() -> list[str]:
    """Names of the registered pruning methods."""
    return list(_available())


__all__ = [
    "CalibrationSet",
    "Mix",
    "ModelSource",
    "PruneResult",
    "PruneSettings",
    "SourceSpec",
    "VocabSettings",
    "VocabTrimResult",
    "__version__",
    "build_calibration",
    "methods",
    "open_source",
    "parse_mix",
    "prune",
    "prune_pretrained",
    "save_pruned",
    "trim_vocab",
    "trim_vocab_pretrained",
]
