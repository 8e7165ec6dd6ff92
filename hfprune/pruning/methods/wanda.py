"""Wanda (Sun et al., 2023): score |W_ij| * ||X_j||_2, compared within each output row.

The activation norm pools every calibration language by summing their squared activations, i.e. a
token-weighted mix, exactly what a single pass over the mixed calibration set would measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..base import ScoreMethod, register
from ..stats import SQ_SUM, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class Wanda(ScoreMethod):
    name: ClassVar[str] = "wanda"
    summary: ClassVar[str] = "|W| x input activation norm, per output row"
    needs: ClassVar[frozenset[str]] = frozenset({SQ_SUM})

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        assert stats is not None
        return weight.abs() * stats.norms().to(weight.device).unsqueeze(0)
