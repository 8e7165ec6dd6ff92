"""Statistics of every block of the *dense* model, in one sequential pass that prunes nothing.

Layerwise profiles (OWL, cross-lingual) must see all blocks before the first one is pruned, so they run the
engine once with a recording "method" whose masks are empty: the engine's capture, per-block arguments and
propagation are reused as they are. Memory stays bounded by one block: each layer is summarised as it
comes, and a block's layer summaries are reduced to one value as soon as the block is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..calibration import CalibrationSet
from ..models import PrunableLayer
from .engine import SequentialPruner
from .registry import PruningMethod
from .stats import SQ_SUM, LayerStats
from .structure import Structure

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


@dataclass
class _Recorder(PruningMethod):
    """A stand-in method: the engine needs one, but :class:`_DensePass` never lets it prune."""

    name: ClassVar[str] = "dense-pass"

    def prune_layer(self, layer, stats, sparsity, structure) -> torch.Tensor:  # pragma: no cover
        raise AssertionError("the dense pass never prunes")


class _DensePass(SequentialPruner):
    """The engine with pruning replaced by summarising, and blocks reduced as soon as they are complete."""

    prunes = False

    def __init__(self, *args: Any, summarise: SummariseLayer, reduce: ReduceBlock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summarise, self.reduce = summarise, reduce
        self.blocks: dict[str, BlockRecord] = {}
        self._pending: list[tuple[PrunableLayer, Any]] = []

    def _prune_layer(self, layer: PrunableLayer, block_index: int, stats: Any) -> None:  # type: ignore[override]
        if self._pending and block_key(self._pending[0][0]) != block_key(layer):
            self.flush()
        self._pending.append((layer, self.summarise(layer, stats)))

    def flush(self) -> None:
        if self._pending:
            params = sum(layer.out_features * layer.in_features for layer, _ in self._pending)
            self.blocks[block_key(self._pending[0][0])] = BlockRecord(params, self.reduce(self._pending))
            self._pending = []


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
    loader: Any = None,
) -> dict[str, BlockRecord]:
    """One record per block (in execution order) of the dense model on ``calibration``; weights untouched."""
    recorder = _Recorder()
    recorder.needs = needs  # type: ignore[misc]  (per-instance statistics request)
    was_training = model.training
    model.eval()
    dense = _DensePass(
        model, recorder, sparsity=0.0, structure=Structure(), calibration=calibration,
        device=torch.device(device), batch_size=batch_size, input_cache=input_cache, loader=loader,
        summarise=summarise, reduce=reduce,
    )
    dense.run()
    dense.flush()
    model.train(was_training)
    return dense.blocks
