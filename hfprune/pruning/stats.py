"""Activation statistics of each linear layer's input, kept per calibration language.

For every input channel ``j`` we keep ``sum_t x_tj^2`` and the token count *per language*: Wanda's pooled
norm is their sum, and language-aware methods (M-Wanda) read the per-language parts. Second-order methods
(SparseGPT) also ask for the pooled ``X^T X``.

Layers that read the same tensor (q/k/v, gate/up) get the statistics computed once: the hook memoises on
the input tensor's identity within one forward call, so stacking methods does not multiply the work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..models import PrunableLayer

#: Statistic names a method can ask for.
SQ_SUM = "sq_sum"
HESSIAN = "hessian"


@dataclass
class LayerStats:
    """Statistics of one layer's input over the calibration tokens."""

    sq_sum: dict[str, torch.Tensor] = field(default_factory=dict)  # language -> [in_features], fp32
    tokens: dict[str, int] = field(default_factory=dict)  # language -> tokens seen
    xtx: torch.Tensor | None = None  # pooled sum of x x^T, [in, in], fp32

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    @property
    def languages(self) -> list[str]:
        return list(self.sq_sum)

    def pooled_sq_sum(self) -> torch.Tensor:
        """The token-weighted sum over languages: exactly what one pooled pass would have counted."""
        return torch.stack(list(self.sq_sum.values())).sum(0)

    def norms(self) -> torch.Tensor:
        """``||X_j||_2`` over all calibration tokens (Wanda's activation term)."""
        return self.pooled_sq_sum().sqrt()

    def hessian(self) -> torch.Tensor:
        """``2 X^T X / n``: SparseGPT's layer-wise Hessian of the squared reconstruction error."""
        if self.xtx is None:
            raise RuntimeError("this layer's statistics were collected without the Hessian")
        return self.xtx * (2.0 / max(self.total_tokens, 1))


class StatsCollector:
    """Forward hooks that fill a :class:`LayerStats` per layer while a block runs on calibration data."""

    def __init__(self, layers: Sequence[PrunableLayer], needs: frozenset[str]) -> None:
        self.layers = list(layers)
        self.needs = needs
        self.stats = {layer.name: LayerStats() for layer in self.layers}
        self.language: str | None = None
        self._memo: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]] = {}

    def _summarise(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        key = id(inp)
        cached = self._memo.get(key)
        if cached is not None and cached[0] is inp:
            return cached[1], cached[2], cached[3]
        x = inp.detach().reshape(-1, inp.shape[-1]).float()
        sq = (x * x).sum(0)
        xtx = x.t() @ x if HESSIAN in self.needs else None
        self._memo[key] = (inp, sq, xtx, x.shape[0])  # keep inp alive so its id cannot be reused
        return sq, xtx, x.shape[0]

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            assert self.language is not None, "set collector.language before running a batch"
            sq, xtx, n = self._summarise(args[0])
            stats = self.stats[name]
            lang = self.language
            stats.sq_sum[lang] = stats.sq_sum[lang] + sq if lang in stats.sq_sum else sq.clone()
            stats.tokens[lang] = stats.tokens.get(lang, 0) + n
            if xtx is not None:
                stats.xtx = xtx.clone() if stats.xtx is None else stats.xtx.add_(xtx)

        return hook

    def end_batch(self) -> None:
        """Forget the memo: tensor ids may be reused by the next forward."""
        self._memo.clear()

    @contextmanager
    def attached(self) -> Iterator[StatsCollector]:
        handles = [layer.module.register_forward_hook(self._hook(layer.name)) for layer in self.layers]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._memo.clear()
