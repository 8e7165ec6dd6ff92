"""hfprune: one-shot pruning of multilingual LLMs with a calibration-language mix.

The public API: :func:`prune` (in memory), :func:`save_pruned`, :func:`prune_pretrained` (load, prune,
save), :func:`methods` (the registry), and the error classes in :mod:`hfprune.errors`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import PruneResult, prune, prune_pretrained, save_pruned  # noqa: E402
from .calibration import CalibrationSet, build_calibration, parse_mix  # noqa: E402
from .pruning.registry import available as _available  # noqa: E402


def methods() -> list[str]:
    """Names of the registered pruning methods."""
    return list(_available())


__all__ = [
    "CalibrationSet",
    "PruneResult",
    "__version__",
    "build_calibration",
    "methods",
    "parse_mix",
    "prune",
    "prune_pretrained",
    "save_pruned",
]
