"""Turning scores into masks. ``True`` marks a weight to prune (the lowest scores go first).

Counts are exact: a row (or layer) of ``k`` columns at sparsity ``s`` loses ``int(k * s)`` weights, and
N:M loses exactly N of every M. Selection uses ``topk`` rather than sorting, and ties resolve the same
way on every run, so the same scores give byte-identical masks.
"""

from __future__ import annotations

import torch

from .sparsity_pattern import Structure


def _lowest(scores: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k <= 0:
        return mask
    idx = torch.topk(scores, k, dim=dim, largest=False, sorted=False).indices
    return mask.scatter_(dim, idx, True)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the lowest ``sparsity`` share of every output row (Wanda's comparison group)."""
    return _lowest(scores, int(scores.shape[1] * sparsity), dim=1)


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune the lowest ``sparsity`` share of the whole layer (magnitude pruning's group)."""
    flat = _lowest(scores.reshape(-1), int(scores.numel() * sparsity), dim=0)
    return flat.reshape(scores.shape)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Prune the lowest ``n`` of every ``m`` consecutive columns in each row."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // m, m)
    return _lowest(groups, n, dim=2).reshape(rows, cols)


def select(scores: torch.Tensor, sparsity: float, structure: Structure, per_row: bool = True) -> torch.Tensor:
    """The mask for ``scores`` under ``structure``; unstructured compares per row or per layer."""
    if structure.is_nm:
        return nm_mask(scores, structure.n, structure.m)
    return row_mask(scores, sparsity) if per_row else layer_mask(scores, sparsity)
