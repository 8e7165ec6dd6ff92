"""The streamed path (--stream): blocks read from the checkpoint and written one at a time."""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import StreamingUnsupportedError
from ..io import atomic_folder
from ..models import ModelSource, describe_source, find_block_stacks, load_tokenizer
from ..models.streaming import (
    CheckpointReader,
    ShardWriter,
    StreamedBlocks,
    load_non_block_weights,
    non_block_state,
    skeleton,
)
from ..pruning.methods import get_method
from ..pruning.stats import needs_gradients
from ..system import peak_memory
from ..vocab import save_trimmed
from .memory import prune_resolved
from .preparation import trim_for_pruning
from .ranks import _after_rank0_wrote, _record_ranks
from .saving import _finish_folder, _generation_config, carry_vocabulary
from .settings import PruneResult, PruneSettings


def _prune_streamed(
    source: ModelSource,
    out: str | Path,
    settings: PruneSettings,
    *,
    overwrite: bool,
    extra: dict[str, Any],
    progress: bool,
) -> PruneResult:
    """``prune --stream``: the model is a skeleton on ``meta``; each block is read from the checkpoint when the
    engine reaches it and written to its own shard as soon as it is pruned. The masks are those of the
    in-memory run: the engine does the same work in the same order (tested). A vocabulary trim runs first on the
    embeddings and head (loaded anyway); its logits check loads each block only for its own call.
    ``settings`` are resolved (their device is this rank's)."""
    method = get_method(settings.method, **settings.method_params)
    if needs_gradients(method.needs):
        raise StreamingUnsupportedError(
            f"--method {method.name} back-propagates through the whole model, which --stream never holds in "
            "memory; run without --stream"
        )
    started = time.perf_counter()
    folder = source.folder()
    model = skeleton(folder, dtype=source.dtype, trust_remote_code=source.trust_remote_code)
    stacks = find_block_stacks(model)
    if len(stacks) != 1:
        raise StreamingUnsupportedError(f"--stream handles one stack of blocks; this model has {len(stacks)}")
    stack = stacks[0]
    reader = CheckpointReader(folder)
    load_non_block_weights(model, stack.name, reader)
    loader = StreamedBlocks(stack.blocks, stack.name, reader)
    tokenizer = load_tokenizer(folder, source.trust_remote_code)
    generation = _generation_config(folder)
    load_s = time.perf_counter() - started
    trimmed = None
    if settings.vocab is not None:  # before the output is opened: a refused trim leaves nothing behind

        def forward(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
            with loader.per_call(stack.blocks), torch.inference_mode():
                return model(input_ids=ids, use_cache=False).logits

        trimmed = trim_for_pruning(model, tokenizer, settings, generation_config=generation, forward=forward)
        tokenizer, settings = trimmed.tokenizer, dataclasses.replace(settings, vocab=None)
    group = distributed.current()
    # Rank 0 writes; the other ranks read every block too (they calibrate on their own batches) but write nothing.
    with atomic_folder(out, overwrite=overwrite) if group.is_main else nullcontext(None) as tmp:
        writer = loader.writer = ShardWriter(tmp, len(stack.blocks) + 1) if tmp is not None else None
        result = prune_resolved(model, tokenizer, settings, loader=loader, progress=progress)
        result.trimmed = trimmed
        _record_ranks(result, group, settings)
        if tmp is None or writer is None:
            return _after_rank0_wrote(result, group)
        if not loader.all_written():
            raise RuntimeError("a block was never written; the output is incomplete and was discarded")
        started = time.perf_counter()
        writer.write(non_block_state(model, stack.name))
        writer.finish()
        model.config.save_pretrained(tmp)
        if generation is not None:
            generation.save_pretrained(tmp)
        if trimmed is not None:
            save_trimmed(tmp, trimmed, folder)
        result.base_model = describe_source(source.model, source.revision, folder)
        result.timings["load_s"] = load_s
        result.timings["save_s"] = time.perf_counter() - started
        result.peak_memory = peak_memory(settings.device)
        local_base = folder if result.base_model.get("local") else None
        metadata = {**result.to_dict(), "streamed": True, **extra}
        if trimmed is None:
            carry_vocabulary(folder, tmp, metadata)
        _finish_folder(tmp, None if trimmed else tokenizer, metadata, local_base)
    return _after_rank0_wrote(result, group)
