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

from ...errors import HessianNotPositiveDefiniteError
from ...models import PrunableLayer
from .. import masks
from ..base import PruningMethod, register
from ..sparsity_pattern import Structure
from ..stats import HESSIAN, LayerStats


# The shape every method shares (name, summary, needs, parameters as fields): see pruning/base.py.
@register
@dataclass
class SparseGPT(PruningMethod):
    name: ClassVar[str] = "sparsegpt"
    summary: ClassVar[str] = "OBS mask + weight update from the layer Hessian (second order)"
    needs: ClassVar[frozenset[str]] = frozenset({HESSIAN})

    percdamp: float = field(
        default=0.01, metadata={"flag": "--percdamp", "help": "SparseGPT damping, share of mean diag(H)"}
    )
    blocksize: int = field(default=128, metadata={"flag": "--blocksize", "help": "SparseGPT column block size"})

    def prune_layer(
        self, layer: PrunableLayer, stats: LayerStats | None, sparsity: float, structure: Structure
    ) -> torch.Tensor:
        assert stats is not None
        w = layer.weight.float().clone()
        u = self._inverse_cholesky(stats.hessian().to(w.device, torch.float32), layer.name)
        mask = torch.zeros_like(w, dtype=torch.bool)
        cols = w.shape[1]
        for start in range(0, cols, self.blocksize):
            end = min(start + self.blocksize, cols)
            self._prune_block(w, u, mask, start, end, sparsity, structure)
        w.masked_fill_(mask, 0)  # exact zeros where pruned, whatever rounding did
        layer.set_weight(w)
        return mask

    def _inverse_cholesky(self, h: torch.Tensor, layer_name: str) -> torch.Tensor:
        """Upper triangular ``U`` with ``U^T U = (H + damping)^-1``, in fp32; damping raised tenfold on failure.

        One factorisation instead of three steps (Cholesky, inverse, Cholesky of the inverse): with ``J`` the
        reversal permutation and ``J H J = L L^T``, ``U = J L^-1 J`` is upper triangular and ``U^T U = H^-1``.
        Half the flops, and at most three n x n buffers (95 MB each for a 4864-wide input) live at once.
        ``h`` is left as it is.
        """
        flipped = h.flip(0, 1)  # J H J (a new tensor); the diagonal is H's, reversed
        del h  # the caller's temporary Hessian is freed here rather than at return
        diagonal = flipped.diagonal()
        diagonal[diagonal == 0] = 1.0  # inputs never active: any weight there is free to prune
        mean_diag = diagonal.mean()
        damp, added = self.percdamp, 0.0
        for _ in range(3):
            diagonal.add_((damp - added) * mean_diag)
            added = damp
            lower, info = torch.linalg.cholesky_ex(flipped)
            if int(info) == 0 and bool(torch.isfinite(lower.diagonal()).all()):
                identity = flipped.zero_()  # its memory is free now: L^-1 is solved into it
                identity.diagonal().fill_(1.0)
                inverse = torch.linalg.solve_triangular(lower, identity, upper=False, out=identity)
                del lower
                return inverse.flip(0, 1)
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
