"""Structured pruning of a loaded model, end to end: blocks first, then neurons and heads, on calibration text.

1. **Depth** (``depth:K``): one pass of the *dense* model measures each block's influence per calibration language
   (``1 - cos`` of its input and output hidden states); the ``K`` blocks with the lowest combined influence leave.
2. **Width and heads**: the engine visits the remaining blocks in order (sequential pipeline: each block sees the
   outputs of the already shrunk blocks before it); per block the lowest-scoring neurons and key/value groups
   leave, the same number in every block, and the output projections are refit by least squares on the
   calibration activations (``refit=False`` for the ablation).
3. The config is rewritten to what is left (see :mod:`.surgery`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ...calibration import CalibrationSet
from ..engine import BlockwiseEngine
from .architecture import Family
from .importance import block_scores, check_lang_agg, combine, lowest, removed_share
from .plan import Plan, plan_removal
from .refit import DEFAULT_DAMP
from .spec import StructuredSpec
from .surgery import remove_blocks, set_heads, set_width
from .visitors import BlockRemoval, InfluenceRecorder, StructuredPruner


@dataclass
class StructuredReport:
    """What structured pruning removed, and the model's size before and after: ``hfprune.json``'s ``structured``."""

    spec: str
    lang_agg: str
    refit: bool
    plan: dict[str, Any]
    params_before: dict[str, int]
    params_after: dict[str, int] = field(default_factory=dict)
    blocks_removed: list[int] = field(default_factory=list)
    #: per language, each original block's influence (mean 1 - cos over that language's tokens); depth only
    block_influence: dict[str, list[float]] = field(default_factory=dict)
    #: per language, the share of its total block influence the removed blocks held
    block_influence_removed: dict[str, float] = field(default_factory=dict)
    blocks: list[BlockRemoval] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune_structured(
    model: nn.Module,
    calibration: CalibrationSet,
    spec: StructuredSpec,
    *,
    lang_agg: str = "pooled",
    refit: bool = True,
    device: torch.device | str = "cpu",
    batch_size: int = 2,
    pipeline: str = "sequential",
    offload: bool = False,
    progress: bool = False,
    input_cache: dict[str, Any] | None = None,
    damp: float = DEFAULT_DAMP,
) -> StructuredReport:
    """Remove what ``spec`` asks from ``model`` in place; see the module docstring.

    ``input_cache`` (first-block inputs of the dense model, as ``hfprune sweep`` shares them) serves the dense
    influence pass, and the width pass only when no block was removed.

    Raises:
        StructuredPruningUnsupportedError, InvalidStructuredSpecError (from :func:`plan_removal`),
        UnknownAggregationError, and the engine's errors.
    """
    check_lang_agg(lang_agg)
    plan, family, stack = plan_removal(model, spec)
    device = torch.device(device)
    report = StructuredReport(str(spec), lang_agg, refit, plan.to_dict(), parameter_counts(model, stack.blocks))
    engine_args = dict(
        calibration=calibration, device=device, batch_size=batch_size, progress=progress, offload=offload
    )
    kept = list(range(plan.blocks))
    if plan.remove_blocks:
        started = time.perf_counter()
        recorder = InfluenceRecorder()
        BlockwiseEngine(model, recorder, pipeline="independent", input_cache=input_cache, **engine_args).run()  # type: ignore[arg-type]
        per_language, pooled = block_scores(recorder.blocks)
        drop = lowest(combine(per_language, pooled, lang_agg), plan.remove_blocks)
        remove_blocks(stack, model.config, drop)
        kept = [i for i in kept if i not in drop]
        report.blocks_removed = drop
        report.block_influence = {lang: [round(float(v), 6) for v in s] for lang, s in per_language.items()}
        report.block_influence_removed = removed_share(per_language, drop)
        report.timings["depth_s"] = time.perf_counter() - started
    if plan.remove_neurons or plan.remove_kv_groups:
        started = time.perf_counter()
        pruner = StructuredPruner(plan, family, lang_agg=lang_agg, refit=refit, original_index=kept, damp=damp)
        cache = input_cache if not plan.remove_blocks else None  # the dense model's block 0 may be gone
        BlockwiseEngine(model, pruner, pipeline=pipeline, input_cache=cache, **engine_args).run()  # type: ignore[arg-type]
        report.blocks = pruner.blocks
        _rewrite_config(model.config, plan, family)
        report.timings["width_heads_s"] = time.perf_counter() - started
    report.params_after = parameter_counts(model, stack.blocks)
    return report


def parameter_counts(model: nn.Module, blocks: nn.ModuleList) -> dict[str, int]:
    """Parameters and their bytes, all (tied weights once) and in the blocks alone."""
    everything = list(model.parameters())  # deduplicated: tied embeddings count once
    in_blocks = list(blocks.parameters())
    return {
        "total": sum(p.numel() for p in everything),
        "blocks": sum(p.numel() for p in in_blocks),
        "total_bytes": sum(p.numel() * p.element_size() for p in everything),
        "blocks_bytes": sum(p.numel() * p.element_size() for p in in_blocks),
    }


def _rewrite_config(config: Any, plan: Plan, family: Family) -> None:
    if plan.remove_neurons:
        set_width(config, family.width_key, plan.width - plan.remove_neurons)
    if plan.remove_kv_groups:
        kv_heads = plan.kv_heads - plan.remove_kv_groups
        set_heads(config, kv_heads * plan.heads_per_group, kv_heads, plan.head_dim)
