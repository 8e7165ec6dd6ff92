"""Activation statistics of each linear layer's input, kept per calibration language.

For every input channel ``j`` we keep ``sum_t x_tj^2`` and the token count *per language*: Wanda's pooled
norm is their sum, and language-aware methods (M-Wanda) read the per-language parts. Second-order methods
(SparseGPT) also ask for the pooled ``X^T X``.

Layers that read the same tensor (q/k/v, gate/up) share one accumulator: the hook memoises on the input
tensor's identity within one forward call, and the second and later readers of a tensor point at the first
reader's :class:`LayerStats` instead of adding their own. For SparseGPT that is one ``X^T X`` for q/k/v instead
of three (memory and time).

Sums are exact (fp64 accumulators, rounded to fp32 once): see :class:`StatsCollector`. That is what lets a run
on several processes (each rank its own batches, then one all-reduce) give the statistics of one process, bit
for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from ..distributed import Group
from ..errors import RanksDisagreeError
from ..models import PrunableLayer

T = TypeVar("T")

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
    xtx: torch.Tensor | None = None  # pooled sum of x x^T, [in, in], fp32 (a GramSum while collecting)
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


def _fire_counts(x: torch.Tensor) -> torch.Tensor:
    """Per channel, the tokens where ``|x_tj|`` exceeds that token's RMS: scale-free, so any layer input works."""
    token_rms = x.pow(2).mean(1, keepdim=True).sqrt()
    return (x.abs() > token_rms).float().sum(0)


def _add_into(sums: dict[str, torch.Tensor], key: str, part: torch.Tensor) -> None:
    """``sums[key] += part`` in an fp64 accumulator (see :class:`StatsCollector`: exact, so order-free)."""
    total = sums.get(key)
    if total is None:
        sums[key] = part.to(torch.float64)
    else:
        total.add_(part)


class GramSum:
    """``sum x^T x`` over batches, exact: each batch's product in fp32 (the expensive part), added in fp64.

    Kept as row chunks, each made and added on its own: the batch's fp32 temporary is one chunk
    (:data:`GRAM_CHUNK_ELEMENTS`), and rounding the sum to fp32 frees each fp64 chunk as soon as it is rounded,
    so it never holds more than the fp64 sum itself (a 4864-wide input: 189 MB; the fp32 sum is 95 MB).
    """

    def __init__(self, n: int, device: torch.device) -> None:
        step = max(1, GRAM_CHUNK_ELEMENTS // n)
        self.chunks = [
            torch.zeros(min(step, n - begin), n, dtype=torch.float64, device=device) for begin in range(0, n, step)
        ]

    def add(self, x: torch.Tensor) -> None:
        xt, begin = x.t(), 0
        for chunk in self.chunks:
            chunk.add_(xt[begin : begin + chunk.shape[0]] @ x)
            begin += chunk.shape[0]

    def to_fp32(self) -> torch.Tensor:
        rounded = []
        while self.chunks:
            rounded.append(self.chunks.pop(0).float())
        return torch.cat(rounded)


#: fp32 elements of one row chunk of a batch's ``x^T x`` (16 MiB; its fp64 sum chunk is 32 MiB)
GRAM_CHUNK_ELEMENTS = 1 << 22


class StatsCollector:
    """Forward hooks that fill a :class:`LayerStats` per layer while a block runs on calibration data.

    **Exact sums.** Each batch's contribution is computed in fp32 as before (``sum_t x_tj^2``, ``x^T x``,
    firing counts), but added into fp64 accumulators, and rounded to fp32 once, in :meth:`finish`. An fp64
    sum of fp32 numbers is exact unless its terms span more than about 29 binary orders of magnitude (53 - 24
    bits, less log2 of the number of batches), so the total does not depend on the order of the batches nor
    on how they are split between processes: a run on N ranks (each summing its own batches, then one fp64
    all-reduce) and a run on one process produce the same fp32 statistics bit for bit, and from them the
    same masks. The per-batch fp32 parts are bitwise equal because a batch is always the same samples
    (batches are dealt whole to ranks) computed by the same kernels. What this costs: an fp64 accumulator
    is twice an fp32 one (``X^T X`` of a 4864-wide input: 189 MB instead of 95 MB; see :class:`GramSum`) plus
    one fp64 add per batch, small beside the fp32 product it adds; ``benchmarks/bench_distributed.py
    --fp64-baseline`` measures it (``benchmarks/results/distributed_cpu.md``), ``bench_exact_sums.py`` counts
    the entries whose sum depends on the order of the batches (none in fp64; most in fp32).

    With :data:`BLOCK_INFLUENCE` in ``needs`` and the ``block`` given, the block's own entry (:data:`BLOCK`)
    also gets the per-language sum of ``1 - cos`` between each token's block input and output (one process
    only: structured pruning does not run under a launcher).
    """

    def __init__(
        self, layers: Sequence[PrunableLayer], needs: frozenset[str], block: torch.nn.Module | None = None
    ) -> None:
        self.layers = list(layers)
        self.needs = needs
        self.block = block if BLOCK_INFLUENCE in needs else None
        #: layer name -> its accumulators (fp64 while collecting, fp32 once finished); shared by co-readers
        self._sums = {layer.name: LayerStats() for layer in self.layers}
        if self.block is not None:
            self._sums[BLOCK] = LayerStats()
        self._finished = False
        self.language: str | None = None
        #: id(input tensor) -> (the tensor, kept alive so its id is not reused; name of its first reader)
        self._memo: dict[int, tuple[torch.Tensor, str]] = {}

    @property
    def stats(self) -> dict[str, LayerStats]:
        """Each layer's statistics, in fp32; reading them finishes the collection (see :meth:`finish`)."""
        return self.finish()

    def finish(self, group: Group | None = None, languages: Sequence[str] = ()) -> dict[str, LayerStats]:
        """Round the fp64 sums to fp32, once; with a ``group`` of several ranks, sum them over the ranks first.

        ``languages``: every calibration language in batch order (the order a single process meets them):
        the per-language entries follow it, and ranks that saw no batch of a language still take part.
        """
        if not self._finished:
            if group is not None and group.size > 1:
                if BLOCK in self._sums:
                    raise ValueError("block influence is collected by one process only")
                if not languages:
                    raise ValueError("summing statistics over ranks needs the calibration languages")
                _reduce_over_ranks(self._sums, self.layers, self.needs, list(languages), group)
            for stats in _distinct(self._sums, self.layers):
                _finish_layer(stats, list(languages))
            if BLOCK in self._sums:
                _finish_layer(self._sums[BLOCK], list(languages))
            self._finished = True
        return self._sums

    def _first_reader(self, inp: torch.Tensor, name: str) -> str:
        """The layer that first read ``inp`` in this batch (``name`` itself if none did)."""
        cached = self._memo.get(id(inp))
        if cached is not None and cached[0] is inp:
            return cached[1]
        self._memo[id(inp)] = (inp, name)
        return name

    def _accumulate(self, stats: LayerStats, inp: torch.Tensor) -> None:
        """Add one batch's input to ``stats`` (fp32 parts, fp64 sums)."""
        x = inp.detach().reshape(-1, inp.shape[-1]).float()
        lang = self.language
        assert lang is not None
        _add_into(stats.sq_sum, lang, (x * x).sum(0))
        stats.tokens[lang] = stats.tokens.get(lang, 0) + x.shape[0]
        if HESSIAN in self.needs:
            if stats.xtx is None:
                stats.xtx = GramSum(x.shape[1], x.device)  # type: ignore[assignment]  # fp32 once finished
            stats.xtx.add(x)
        if FIRES in self.needs:
            _add_into(stats.fires, lang, _fire_counts(x))

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            assert self.language is not None, "set collector.language before running a batch"
            assert not self._finished, "these statistics are finished; collect into a new StatsCollector"
            owner = self._first_reader(args[0], name)
            if owner != name:
                # Same input as ``owner``: share its accumulator (aliased on the first batch).
                if self._sums[name] is not self._sums[owner]:
                    if self._sums[name].tokens:  # readers changed between batches: never silently mix
                        raise RuntimeError(f"layers {owner} and {name} shared an input in only some batches")
                    self._sums[name] = self._sums[owner]
                return
            self._accumulate(self._sums[name], args[0])

        return hook

    def _block_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """Block influence of one batch: how far the block turns each token's hidden state."""
        assert self.language is not None, "set collector.language before running a batch"
        hidden_in = args[0] if args else kwargs["hidden_states"]
        hidden_out = output[0] if isinstance(output, (tuple, list)) else output
        x = hidden_in.detach().reshape(-1, hidden_in.shape[-1]).float()
        y = hidden_out.detach().reshape(-1, hidden_out.shape[-1]).float()
        turned = (1.0 - torch.nn.functional.cosine_similarity(x, y, dim=-1)).sum().reshape(1).cpu()
        entry = self._sums[BLOCK]
        _add_into(entry.influence, self.language, turned)
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


def _distinct(sums: dict[str, LayerStats], layers: Sequence[PrunableLayer]) -> list[LayerStats]:
    """Each accumulator once (layers reading one input share one), in layer order."""
    seen: dict[int, LayerStats] = {}
    for layer in layers:
        seen.setdefault(id(sums[layer.name]), sums[layer.name])
    return list(seen.values())


def _in_order(values: dict[str, T], languages: list[str]) -> dict[str, T]:
    """``values`` with the given languages first, in that order (a single process meets them so)."""
    ordered = {lang: values[lang] for lang in languages if lang in values}
    ordered.update((lang, value) for lang, value in values.items() if lang not in ordered)
    return ordered


def _finish_layer(stats: LayerStats, languages: list[str]) -> None:
    """fp64 sums -> fp32 (rounded once), per-language entries in batch order."""
    stats.sq_sum = _in_order({k: v.float() for k, v in stats.sq_sum.items()}, languages)
    stats.fires = _in_order({k: v.float() for k, v in stats.fires.items()}, languages)
    stats.tokens = _in_order(stats.tokens, languages)
    stats.influence = _in_order({k: v.float() for k, v in stats.influence.items()}, languages)
    if isinstance(stats.xtx, GramSum):
        stats.xtx = stats.xtx.to_fp32()


def _reduce_over_ranks(
    sums: dict[str, LayerStats],
    layers: Sequence[PrunableLayer],
    needs: frozenset[str],
    languages: list[str],
    group: Group,
) -> None:
    """Sum every rank's fp64 accumulators over ``group``, in place; afterwards every rank holds the totals.

    A rank that ran no batch (more ranks than batches) does not know which layers share an input; it takes
    the sharing of the ranks that did. Token counts travel as fp64 (exact below 2^53).
    """
    owners = {layer.name: _owner(sums, layers, layer.name) for layer in layers}
    has_data = any(stats.tokens for stats in sums.values())
    maps = group.all_gather_object((has_data, owners), "sharing the layers' statistics")
    known = [found for ran, found in maps if ran]
    if any(found != known[0] for found in known):
        raise RanksDisagreeError("ranks found different layers sharing one input; the model differs between ranks")
    if known and known[0] != owners:
        fresh = {name: LayerStats() for name in known[0] if known[0][name] == name}
        sums.update({name: fresh[known[0][name]] for name in known[0]})
    by_name = {layer.name: layer for layer in layers}
    distinct = _distinct(sums, layers)
    flat: list[torch.Tensor] = []
    for stats in distinct:
        layer = by_name[next(name for name in sums if sums[name] is stats)]
        width, device = layer.in_features, _device_of(stats, layer)
        for lang in languages:
            stats.sq_sum.setdefault(lang, torch.zeros(width, dtype=torch.float64, device=device))
            stats.tokens.setdefault(lang, 0)
            if FIRES in needs:
                stats.fires.setdefault(lang, torch.zeros(width, dtype=torch.float64, device=device))
            counts = torch.tensor([float(stats.tokens[lang])], dtype=torch.float64, device=device)
            flat += [stats.sq_sum[lang], counts] + ([stats.fires[lang]] if FIRES in needs else [])
        if HESSIAN in needs and stats.xtx is None:
            stats.xtx = GramSum(width, device)  # type: ignore[assignment]
    if flat:
        packed = torch.cat([part.to(flat[0].device) for part in flat])
        group.all_reduce_([packed], "summing the calibration statistics")
        offset = 0
        for stats in distinct:
            for lang in languages:
                for part in [stats.sq_sum[lang], None] + ([stats.fires[lang]] if FIRES in needs else []):
                    if part is None:
                        stats.tokens[lang] = int(packed[offset].item())
                        offset += 1
                    else:
                        part.copy_(packed[offset : offset + part.numel()])
                        offset += part.numel()
    if HESSIAN in needs:
        chunks = [chunk for stats in distinct if isinstance(stats.xtx, GramSum) for chunk in stats.xtx.chunks]
        group.all_reduce_(chunks, "summing X^T X")
    for stats in distinct:  # languages no rank saw (cannot happen with whole batches per language): drop
        for lang in [lang for lang, count in stats.tokens.items() if count == 0]:
            stats.tokens.pop(lang)
            stats.sq_sum.pop(lang, None)
            stats.fires.pop(lang, None)


def _owner(sums: dict[str, LayerStats], layers: Sequence[PrunableLayer], name: str) -> str:
    """The first layer (in order) sharing ``name``'s accumulator."""
    return next(layer.name for layer in layers if sums[layer.name] is sums[name])


def _device_of(stats: LayerStats, layer: PrunableLayer) -> torch.device:
    """Where the accumulators live: where the batches ran (the layer's device on a rank that ran none)."""
    for tensor in [*stats.sq_sum.values(), *(stats.xtx.chunks if isinstance(stats.xtx, GramSum) else [])]:
        return tensor.device
    return layer.weight.device
