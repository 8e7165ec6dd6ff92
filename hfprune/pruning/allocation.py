"""Layerwise sparsity allocation: turn one importance number per block into one sparsity per block.

OWL and M-Wanda's cross-lingual profile both say "this block matters more, prune it less". The mapping is
shared: importances are min-max scaled, mapped linearly onto ``[target + delta, target - delta]`` (most
important block gets the least sparsity), then shifted so the *parameter-weighted* mean equals the target
exactly, and clipped to the bounds. The shift is found by bisection because clipping makes the mean a
piecewise-linear (but monotone) function of it; since ``target`` lies inside the bounds, a shift that hits
the target always exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import AllocationError

#: no block is pruned beyond this, whatever delta says: a fully pruned block breaks the model
MAX_BLOCK_SPARSITY = 0.99


def bounds(target: float, delta: float) -> tuple[float, float]:
    """The interval each block's sparsity must stay in: ``[target - delta, target + delta]`` within [0, 0.99]."""
    return max(0.0, target - delta), min(MAX_BLOCK_SPARSITY, target + delta)


def allocate(importance: Sequence[float], params: Sequence[int], target: float, delta: float) -> list[float]:
    """Per-block sparsities with parameter-weighted mean ``target``, each inside :func:`bounds`.

    Args:
        importance: one number per block; higher means prune it less. Only the order and spacing matter.
        params: prunable parameters per block (the weights of the mean).
        target: the model-wide sparsity.
        delta: the half-width of the allowed range (OWL's lambda); 0 gives uniform sparsity.

    Raises:
        AllocationError: the lists differ in length, or the target lies outside ``[0, 0.99]``.
    """
    if len(importance) != len(params) or not params:
        raise AllocationError(f"need one importance per block: got {len(importance)} for {len(params)} blocks")
    lo, hi = bounds(target, delta)
    if not lo <= target <= hi:
        raise AllocationError(f"target sparsity {target} is outside [0, {MAX_BLOCK_SPARSITY}]")
    spread = max(importance) - min(importance)
    if delta <= 0 or spread <= 0:
        return [float(target)] * len(params)
    scaled = [(value - min(importance)) / spread for value in importance]  # 0 = least important
    base = [target + delta - 2 * delta * u for u in scaled]
    shift = _shift_for_mean(base, params, target, lo, hi)
    return [min(hi, max(lo, b + shift)) for b in base]


def weighted_mean(values: Sequence[float], params: Sequence[int]) -> float:
    return sum(v * n for v, n in zip(values, params)) / sum(params)


def _shift_for_mean(base: Sequence[float], params: Sequence[int], target: float, lo: float, hi: float) -> float:
    def mean_after(shift: float) -> float:
        return weighted_mean([min(hi, max(lo, b + shift)) for b in base], params)

    left, right = lo - max(base), hi - min(base)  # every block at lo ... every block at hi
    for _ in range(200):
        middle = (left + right) / 2
        if mean_after(middle) < target:
            left = middle
        else:
            right = middle
    return (left + right) / 2
