"""GraSP (Wang et al., 2020) on calibration text: keep weights by ``W * (H g)``, compared per output row.

GraSP removes the weights whose removal least reduces the gradient norm: its removal score is
``S = -W * (H g)`` (``g = dL/dW``, ``H`` the Hessian), highest removed first; so the kept-importance here is
``W * (H g) = -S``. ``H g`` is a Hessian-vector product from a second backward pass (``pruning.gradients``),
which makes GraSP the most expensive method in the registry: use it on small models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..base import ScoreMethod, register
from ..stats import GRADIENT, HESSIAN_GRADIENT, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class GraSP(ScoreMethod):
    name: ClassVar[str] = "grasp"
    summary: ClassVar[str] = "W x (Hessian x gradient) on the calibration text (gradient flow), per row"
    needs: ClassVar[frozenset[str]] = frozenset({GRADIENT, HESSIAN_GRADIENT})

    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        assert stats is not None and stats.hess_grad is not None
        return weight * stats.hess_grad.to(weight.device)
