"""Activation statistics of each linear layer's input, kept per calibration language.

For every input channel ``j`` we keep ``sum_t x_tj^2`` and the token count *per language*: Wanda's pooled
norm is their sum, and language-aware methods (M-Wanda) read the per-language parts. Second-order methods
(SparseGPT) also ask for the pooled ``X^T X``.

Layers that read the same tensor (q/k/v, gate/up) share one accumulator: the hook memoises on the input
tensor's identity within one forward call, and the second and later readers of a tensor point at the first
reader's :class:`LayerStats` instead of adding their own. For SparseGPT that is one ``X^T X`` for q/k/v instead
of three (memory and time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from ..models import PrunableLayer

#: Statistic names a method can ask for.
SQ_SUM = "sq_sum"
HESSIAN = "hessian"
#: per-language count of tokens on which a channel *fires*: ``|x_tj|`` above the token's RMS over channels
FIRES = "fires"
#: ``dL/dW`` of the dense model on the calibration text (SNIP); filled by ``pruning.gradients``
GRADIENT = "gradient"
#: the Hessian-gradient product ``H g`` (GraSP); implies :data:`GRADIENT`
HESSIAN_GRADIENT = "hessian_gradient"
#: per-language sum over tokens of ``1 - cos(block input, block output)`` (ShortGPT's block influence); kept in
#: the block's own entry of the statistics, under :data:`BLOCK`
BLOCK_INFLUENCE = "block_influence"
#: key of the block's own statistics (not a layer's) in a block's statistics dict
BLOCK = "<block>"


def needs_gradients(needs: frozenset[str]) -> bool:
    """Whether these statistics take a backward pass through the whole dense model (SNIP, GraSP)."""
    return bool(needs & {GRADIENT, HESSIAN_GRADIENT})


@dataclass
class LayerStats:
    """Statistics of one layer's input over the calibration tokens."""

    sq_sum: dict[str, torch.Tensor] = field(default_factory=dict)  # language -> [in_features], fp32
    tokens: dict[str, int] = field(default_factory=dict)  # language -> tokens seen
    xtx: torch.Tensor | None = None  # pooled sum of x x^T, [in, in], fp32
    fires: dict[str, torch.Tensor] = field(default_factory=dict)  # language -> [in_features], fp32 counts
    grad: torch.Tensor | None = None  # dL/dW, [out, in], fp32 (gradient methods only)
    hess_grad: torch.Tensor | None = None  # H dL/dW, [out, in], fp32 (GraSP only)
    influence: dict[str, torch.Tensor] = field(default_factory=dict)  # language -> [1], sum of 1 - cos (BLOCK)

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

    def rms(self, lang: str) -> torch.Tensor:
        """Per-channel RMS activation in one language: comparable across languages whatever their token counts."""
        return (self.sq_sum[lang] / max(self.tokens[lang], 1)).sqrt()

    def fire_rate(self, lang: str) -> torch.Tensor:
        """Share of ``lang``'s tokens on which each channel fires (see :data:`FIRES`)."""
        if lang not in self.fires:
            raise RuntimeError("this layer's statistics were collected without firing counts")
        return self.fires[lang] / max(self.tokens[lang], 1)

    def block_influence(self, lang: str) -> float:
        """Mean ``1 - cos(input, output)`` of the block over ``lang``'s tokens (the :data:`BLOCK` entry only)."""
        if lang not in self.influence:
            raise RuntimeError("these statistics were collected without block influence")
        return float(self.influence[lang]) / max(self.tokens[lang], 1)

    def hessian(self) -> torch.Tensor:
        """``2 X^T X / n``: SparseGPT's layer-wise Hessian of the squared reconstruction error."""
        if self.xtx is None:
            raise RuntimeError("this layer's statistics were collected without the Hessian")
        return self.xtx * (2.0 / max(self.total_tokens, 1))


def _add(total: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    return part.clone() if total is None else total + part


def _fire_counts(x: torch.Tensor) -> torch.Tensor:
    """Per channel, the tokens where ``|x_tj|`` exceeds that token's RMS: scale-free, so any layer input works."""
    token_rms = x.pow(2).mean(1, keepdim=True).sqrt()
    return (x.abs() > token_rms).float().sum(0)


class StatsCollector:
    """Forward hooks that fill a :class:`LayerStats` per layer while a block runs on calibration data.

    With :data:`BLOCK_INFLUENCE` in ``needs`` and the ``block`` given, the block's own entry (:data:`BLOCK`)
    also gets the per-language sum of ``1 - cos`` between each token's block input and output.
    """

    def __init__(
        self, layers: Sequence[PrunableLayer], needs: frozenset[str], block: torch.nn.Module | None = None
    ) -> None:
        self.layers = list(layers)
        self.needs = needs
        self.block = block if BLOCK_INFLUENCE in needs else None
        self.stats = {layer.name: LayerStats() for layer in self.layers}
        if self.block is not None:
            self.stats[BLOCK] = LayerStats()
        self.language: str | None = None
        #: id(input tensor) -> (the tensor, kept alive so its id is not reused; name of its first reader)
        self._memo: dict[int, tuple[torch.Tensor, str]] = {}

    def _first_reader(self, inp: torch.Tensor, name: str) -> str:
        """The layer that first read ``inp`` in this batch (``name`` itself if none did)."""
        cached = self._memo.get(id(inp))
        if cached is not None and cached[0] is inp:
            return cached[1]
        self._memo[id(inp)] = (inp, name)
        return name

    def _accumulate(self, stats: LayerStats, inp: torch.Tensor) -> None:
        """Add one batch's input to ``stats`` (``X^T X`` in place: no n x n temporary per batch)."""
        x = inp.detach().reshape(-1, inp.shape[-1]).float()
        lang = self.language
        assert lang is not None
        stats.sq_sum[lang] = _add(stats.sq_sum.get(lang), (x * x).sum(0))
        stats.tokens[lang] = stats.tokens.get(lang, 0) + x.shape[0]
        if HESSIAN in self.needs:
            stats.xtx = x.t() @ x if stats.xtx is None else stats.xtx.addmm_(x.t(), x)
        if FIRES in self.needs:
            stats.fires[lang] = _add(stats.fires.get(lang), _fire_counts(x))

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            assert self.language is not None, "set collector.language before running a batch"
            owner = self._first_reader(args[0], name)
            if owner != name:
                # Same input as ``owner``: share its accumulator (aliased on the first batch).
                if self.stats[name] is not self.stats[owner]:
                    if self.stats[name].tokens:  # readers changed between batches: never silently mix
                        raise RuntimeError(f"layers {owner} and {name} shared an input in only some batches")
                    self.stats[name] = self.stats[owner]
                return
            self._accumulate(self.stats[name], args[0])

        return hook

    def _block_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """Block influence of one batch: how far the block turns each token's hidden state."""
        assert self.language is not None, "set collector.language before running a batch"
        hidden_in = args[0] if args else kwargs["hidden_states"]
        hidden_out = output[0] if isinstance(output, (tuple, list)) else output
        x = hidden_in.detach().reshape(-1, hidden_in.shape[-1]).float()
        y = hidden_out.detach().reshape(-1, hidden_out.shape[-1]).float()
        turned = (1.0 - torch.nn.functional.cosine_similarity(x, y, dim=-1)).sum().reshape(1).cpu()
        entry = self.stats[BLOCK]
        entry.influence[self.language] = _add(entry.influence.get(self.language), turned)
        entry.tokens[self.language] = entry.tokens.get(self.language, 0) + x.shape[0]

    def end_batch(self) -> None:
        """Forget the memo: tensor ids may be reused by the next forward."""
        self._memo.clear()

    @contextmanager
    def attached(self) -> Iterator[StatsCollector]:
        handles = [layer.module.register_forward_hook(self._hook(layer.name)) for layer in self.layers]
        if self.block is not None:
            handles.append(self.block.register_forward_hook(self._block_hook, with_kwargs=True))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._memo.clear()
