"""SNIP (Lee et al., 2019) on calibration text: ``|W * dL/dW|``, compared per output row.

The saliency is the first-order estimate of how much the loss changes when a weight is removed. The
gradient is taken once, on the *dense* model, over all calibration samples (``pruning.gradients``), which
costs one full forward and backward per batch: more memory than Wanda, which never backpropagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..base import ScoreMethod, register
from ..stats import GRADIENT, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class SNIP(ScoreMethod):
    name: ClassVar[str] = "snip"
    summary: ClassVar[str] = "|W x dL/dW| on the calibration text (gradient of the dense model), per row"
    needs: ClassVar[frozenset[str]] = frozenset({GRADIENT})

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        assert stats is not None and stats.grad is not None
        return (weight * stats.grad.to(weight.device)).abs()
