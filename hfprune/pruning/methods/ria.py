"""RIA (Zhang et al., 2024): relative importance times activation norm, compared per output row.

``score_ij = (|W_ij| / sum_k |W_ik| + |W_ij| / sum_k |W_kj|) * ||X_j||_2 ** alpha``. The two relative terms
keep a weight that is large *for its row or for its column*, so no input channel or output neuron is pruned
away entirely just because its weights are small in absolute terms; ``alpha`` (0.5 in the paper) tempers
the activation norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..base import ScoreMethod, register
from ..stats import SQ_SUM, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class RIA(ScoreMethod):
    name: ClassVar[str] = "ria"
    summary: ClassVar[str] = "relative importance (row + column share of |W|) x activation norm^alpha, per row"
    needs: ClassVar[frozenset[str]] = frozenset({SQ_SUM})

    alpha: float = field(default=0.5, metadata={"flag": "--ria-alpha", "help": "exponent of the activation norm"})

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        assert stats is not None
        magnitude = weight.abs()
        by_row = magnitude / magnitude.sum(1, keepdim=True).clamp_min(1e-12)
        by_column = magnitude / magnitude.sum(0, keepdim=True).clamp_min(1e-12)
        activation = stats.norms().to(weight.device).pow(self.alpha).unsqueeze(0)
        return (by_row + by_column) * activation
