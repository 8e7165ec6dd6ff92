"""Mask overlap between pruned models: did calibrating on another language prune other weights?

IoU is taken over the *pruned* weights: ``|A & B| / |A | B|``. Identical masks give 1, disjoint masks 0,
and two independent random masks at sparsities ``a`` and ``b`` give ``ab / (a + b - ab)`` (1/3 at 50%):
the number to compare against, reported beside each IoU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..errors import AnalysisInputError


@dataclass
class Overlap:
    intersection: int
    union: int
    pruned_a: int
    pruned_b: int
    size: int

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else 1.0  # two empty masks agree entirely

    @property
    def random_iou(self) -> float:
        a, b = self.pruned_a / self.size, self.pruned_b / self.size
        both = a * b
        return both / (a + b - both) if a + b - both > 0 else 1.0

    def __add__(self, other: Overlap) -> Overlap:
        return Overlap(
            *(getattr(self, f) + getattr(other, f) for f in ("intersection", "union", "pruned_a", "pruned_b", "size"))
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "iou": self.iou,
            "random_iou": self.random_iou,
            "sparsity_a": self.pruned_a / self.size,
            "sparsity_b": self.pruned_b / self.size,
        }


def overlap(a: torch.Tensor, b: torch.Tensor) -> Overlap:
    """Overlap of two boolean masks of the same shape (``True`` = pruned)."""
    if a.shape != b.shape:
        raise AnalysisInputError(
            f"masks of different shapes {tuple(a.shape)} and {tuple(b.shape)}: compare models pruned from the same base"
        )
    a, b = a.bool(), b.bool()
    return Overlap(int((a & b).sum()), int((a | b).sum()), int(a.sum()), int(b.sum()), a.numel())


def total(overlaps: Iterable[Overlap]) -> Overlap:
    """Pooled over layers: weights counted once each, so big layers weigh more (not a mean of IoUs)."""
    items = list(overlaps)
    out = items[0]
    for item in items[1:]:
        out = out + item
    return out
