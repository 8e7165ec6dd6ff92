"""SparseGPT (Frantar & Alistarh, 2023): mask by OBS saliency and update the kept weights to compensate.

With ``H = 2 X^T X / n`` (+ damping) and ``U`` the upper Cholesky factor of ``H^-1``, columns are processed
left to right in blocks. A weight's saliency is ``w^2 / U_jj^2``; pruning a column's weights spreads their
error over the columns not yet processed (``W[:, j:] -= err_j U_j,j:``). Unstructured masks are chosen per
column block over all rows (as in the reference), N:M every M columns within each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ...errors import HfpruneError
from ...models import PrunableLayer
from .. import masks
from ..registry import PruningMethod, register
from ..stats import HESSIAN, LayerStats
from ..structure import Structure


class HessianNotPositiveDefiniteError(HfpruneError):
    """Cholesky failed even with extra damping: the calibration data is degenerate for this layer."""


@register
@dataclass
class SparseGPT(PruningMethod):
    name: ClassVar[str] = "sparsegpt"
    summary: ClassVar[str] = "OBS mask + weight update from the layer Hessian (second order)"
    needs: ClassVar[frozenset[str]] = frozenset({HESSIAN})

    percdamp: float = field(default=0.01, metadata={"flag": "--percdamp", "help": "SparseGPT damping, share of mean diag(H)"})
    blocksize: int = field(default=128, metadata={"flag": "--blocksize", "help": "SparseGPT column block size"})

    def prune_layer(
        self, layer: PrunableLayer, stats: LayerStats | None, sparsity: float, structure: Structure
    ) -> torch.Tensor:
        assert stats is not None
        w = layer.weight.float().clone()
        u = self._inverse_cholesky(stats.hessian().to(w.device), layer.name)
        mask = torch.zeros_like(w, dtype=torch.bool)
        cols = w.shape[1]
        for start in range(0, cols, self.blocksize):
            end = min(start + self.blocksize, cols)
            self._prune_block(w, u, mask, start, end, sparsity, structure)
        w.masked_fill_(mask, 0)  # exact zeros where pruned, whatever rounding did
        layer.set_weight(w)
        return mask

    def _inverse_cholesky(self, h: torch.Tensor, layer_name: str) -> torch.Tensor:
        """Upper Cholesky factor of ``(H + damping)^-1``, damping raised tenfold on failure (three tries)."""
        h = h.double()
        dead = torch.diag(h) == 0
        h[dead, dead] = 1.0  # inputs never active: any weight there is free to prune
        mean_diag = torch.diag(h).mean()
        eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
        damp = self.percdamp
        for _ in range(3):
            try:
                lower = torch.linalg.cholesky(h + damp * mean_diag * eye)
                inverse = torch.cholesky_inverse(lower)
                return torch.linalg.cholesky(inverse, upper=True).float()
            except torch.linalg.LinAlgError:
                damp *= 10
        raise HessianNotPositiveDefiniteError(
            f"{layer_name}: the Hessian is not positive definite even with damping {damp / 10:g}; "
            "use more or more varied calibration text, or raise --percdamp"
        )

    def _prune_block(
        self,
        w: torch.Tensor,
        u: torch.Tensor,
        mask: torch.Tensor,
        start: int,
        end: int,
        sparsity: float,
        structure: Structure,
    ) -> None:
        w1 = w[:, start:end].clone()
        u1 = u[start:end, start:end]
        d = torch.diag(u1)
        err = torch.zeros_like(w1)
        m1 = torch.zeros_like(w1, dtype=torch.bool)
        if not structure.is_nm:
            m1 = masks.layer_mask(w1.pow(2) / d.pow(2).unsqueeze(0), sparsity)
        for i in range(end - start):
            if structure.is_nm and i % structure.m == 0:
                group = slice(i, i + structure.m)
                saliency = w1[:, group].pow(2) / d[group].pow(2).unsqueeze(0)
                m1[:, group] = masks.nm_mask(saliency, structure.n, structure.m)
            col = w1[:, i]
            q = col.masked_fill(m1[:, i], 0)
            e = (col - q) / d[i]
            w1[:, i:] -= e.unsqueeze(1) * u1[i, i:].unsqueeze(0)
            w1[:, i] = q
            err[:, i] = e
        w[:, start:end] = w1
        mask[:, start:end] = m1
        w[:, end:] -= err @ u[start:end, end:]
