"""The engine's visitors for structured pruning: one measures block influence, one removes neurons and heads.

Both run inside :class:`~hfprune.pruning.engine.BlockwiseEngine`, so capture, per-block arguments (Gemma 3's
sliding-window masks), device placement, offload and the sequential pipeline are the engine's: with the
sequential pipeline each block is scored on the outputs of the already *shrunk* blocks before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ...models import PrunableLayer
from ..stats import BLOCK, BLOCK_INFLUENCE, HESSIAN, SQ_SUM, LayerStats
from .architecture import Family
from .importance import combine, grouped, lowest, neuron_scores, removed_share
from .plan import Plan
from .refit import DEFAULT_DAMP, drop_columns
from .surgery import head_channels, keep_head_groups, keep_neurons


class InfluenceRecorder:
    """Keeps each block's influence statistics (dense model, one pass per block); changes nothing."""

    name = "block influence"
    needs = frozenset({BLOCK_INFLUENCE})
    final = False

    def __init__(self) -> None:
        self.blocks: list[LayerStats] = []

    def visit(self, block_index: int, layers: list[PrunableLayer], stats: dict[str, LayerStats]) -> None:
        self.blocks.append(stats[BLOCK])


@dataclass
class BlockRemoval:
    """What one block lost (indices are the block's own, before removal)."""

    block: int  # index in the original model
    neurons_removed: list[int] = field(default_factory=list)
    kv_groups_removed: list[int] = field(default_factory=list)
    query_heads_removed: list[int] = field(default_factory=list)
    #: per kind ("neurons", "heads"), per language: share of that language's score the removed structures held
    score_removed: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per refit layer kind ("down_proj", "o_proj"): calibration error dropped vs refit
    refit: dict[str, dict[str, Any]] = field(default_factory=dict)


class StructuredPruner:
    """Removes the planned neurons and key/value groups of each block, refitting the output projections."""

    name = "structured"
    final = True

    def __init__(
        self,
        plan: Plan,
        family: Family,
        *,
        lang_agg: str,
        refit: bool,
        original_index: list[int],
        damp: float = DEFAULT_DAMP,
    ) -> None:
        self.plan, self.family, self.lang_agg, self.refit, self.damp = plan, family, lang_agg, refit, damp
        self.needs = frozenset({SQ_SUM, HESSIAN}) if refit else frozenset({SQ_SUM})
        #: block index in the stack being pruned -> index in the original model (depth pruning came first)
        self.original_index = original_index
        self.blocks: list[BlockRemoval] = []

    def visit(self, block_index: int, layers: list[PrunableLayer], stats: dict[str, LayerStats]) -> None:
        by_name = {layer.short_name: layer for layer in layers}
        removal = BlockRemoval(self.original_index[block_index])
        if self.plan.remove_neurons:
            self._neurons(by_name, stats, removal)
        if self.plan.remove_kv_groups:
            self._heads(by_name, stats, removal)
        self.blocks.append(removal)

    def _neurons(self, layers: dict[str, PrunableLayer], stats: dict[str, LayerStats], removal: BlockRemoval) -> None:
        down = layers[self.family.mlp_out]
        layer_stats = stats[down.name]
        per_language, pooled = neuron_scores(down.weight, layer_stats)
        drop = lowest(combine(per_language, pooled, self.lang_agg), self.plan.remove_neurons)
        keep = _complement(drop, down.in_features)
        outcome = drop_columns(down.weight, layer_stats.xtx, keep, damp=self.damp) if self.refit else None
        keep_neurons(layers, self.family.mlp_in, self.family.mlp_out, keep, outcome.weight if outcome else None)
        removal.neurons_removed = drop
        removal.score_removed["neurons"] = removed_share(per_language, drop)
        if outcome is not None:
            removal.refit[down.kind] = outcome.to_dict()

    def _heads(self, layers: dict[str, PrunableLayer], stats: dict[str, LayerStats], removal: BlockRemoval) -> None:
        assert self.family.attention is not None
        plan, o_proj = self.plan, layers[self.family.attention.o]
        layer_stats = stats[o_proj.name]
        per_channel, pooled_channels = neuron_scores(o_proj.weight, layer_stats)
        per_group = {lang: grouped(s, plan.kv_heads) for lang, s in per_channel.items()}
        drop = lowest(combine(per_group, grouped(pooled_channels, plan.kv_heads), self.lang_agg), plan.remove_kv_groups)
        kept_groups = [g for g in range(plan.kv_heads) if g not in drop]
        query, kv = head_channels(kept_groups, plan.heads_per_group, plan.head_dim)
        outcome = drop_columns(o_proj.weight, layer_stats.xtx, query, damp=self.damp) if self.refit else None
        keep_head_groups(layers, self.family.attention, query, kv, outcome.weight if outcome else None)
        removal.kv_groups_removed = drop
        removal.query_heads_removed = [g * plan.heads_per_group + i for g in drop for i in range(plan.heads_per_group)]
        removal.score_removed["heads"] = removed_share(per_group, drop)
        if outcome is not None:
            removal.refit[o_proj.kind] = outcome.to_dict()


def _complement(drop: list[int], size: int) -> torch.Tensor:
    dropped = set(drop)
    return torch.tensor([i for i in range(size) if i not in dropped], dtype=torch.long)
