"""Magnitude pruning: drop the smallest |W| of each layer. Needs no calibration data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..base import ScoreMethod, register
from ..stats import LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class Magnitude(ScoreMethod):
    name: ClassVar[str] = "magnitude"
    summary: ClassVar[str] = "|W|, compared across the whole layer; no calibration data"
    per_row: ClassVar[bool] = False

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        return weight.abs()
