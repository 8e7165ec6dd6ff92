"""Statistics of every block of the *dense* model, in one sequential pass that prunes nothing.

Layerwise profiles (OWL, cross-lingual) must see all blocks before the first one is pruned, so they run the
engine once with a visitor that summarises instead of pruning: the engine's capture, per-block arguments and
propagation are reused as they are. Memory stays bounded by one block: each layer is summarised as it
comes, and a block's layer summaries are reduced to one value as soon as the block is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..calibration import CalibrationSet
from ..models import PrunableLayer
from .engine import BlockLoader, BlockwiseEngine
from .stats import SQ_SUM, LayerStats

#: (layer, its dense statistics) -> what to keep about the layer until its block is done
SummariseLayer = Callable[[PrunableLayer, LayerStats], Any]
#: [(layer, summary), ...] of one block -> the block's record
ReduceBlock = Callable[[list[tuple[PrunableLayer, Any]]], Any]


def block_key(layer: PrunableLayer) -> str:
    """The block a layer lives in, unique across stacks: ``model.layers.3``, ``decoder.block.0``."""
    return layer.name[: -len(layer.short_name) - 1]


@dataclass
class BlockRecord:
    params: int  # prunable weights in the block
    value: Any  # what ``reduce_block`` made of it


class _Summariser:
    """The engine's visitor for the dense pass: summarise each layer, reduce each block; prune nothing."""

    name = "dense statistics"
    final = False  # the weights stay dense: a streaming loader must not write them

    def __init__(self, needs: frozenset[str], summarise: SummariseLayer, reduce: ReduceBlock) -> None:
        self.needs, self.summarise, self.reduce = needs, summarise, reduce
        self.blocks: dict[str, BlockRecord] = {}

    def visit(self, block_index: int, layers: list[PrunableLayer], stats: dict[str, LayerStats]) -> None:
        if not layers:
            return
        summaries = [(layer, self.summarise(layer, stats[layer.name])) for layer in layers]
        params = sum(layer.out_features * layer.in_features for layer in layers)
        self.blocks[block_key(layers[0])] = BlockRecord(params, self.reduce(summaries))


def collect_dense(
    model: nn.Module,
    calibration: CalibrationSet,
    *,
    summarise: SummariseLayer,
    reduce: ReduceBlock = list,
    needs: frozenset[str] = frozenset({SQ_SUM}),
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    input_cache: dict[str, Any] | None = None,
    loader: BlockLoader | None = None,
) -> dict[str, BlockRecord]:
    """One record per block (in execution order) of the dense model on ``calibration``; weights untouched."""
    summariser = _Summariser(needs, summarise, reduce)
    was_training = model.training
    model.eval()
    BlockwiseEngine(
        model,
        summariser,
        calibration=calibration,
        device=torch.device(device),
        batch_size=batch_size,
        input_cache=input_cache,
        loader=loader,
    ).run()
    model.train(was_training)
    return summariser.blocks
