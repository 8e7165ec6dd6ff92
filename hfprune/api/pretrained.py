"""Load, prune and save in one call (hfprune prune): in memory, placed, or streamed."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from .. import distributed
from ..constants import DEFAULT_MAX_SHARD_SIZE
from ..errors import InvalidOptionError, StreamingUnsupportedError
from ..healing import HealSettings, heal, teacher_record
from ..io import check_output, portable_command
from ..models import ModelSource, release
from ..system import peak_memory
from .memory import prune_resolved
from .ranks import _record_ranks
from .saving import check_shard_size, save_pruned
from .settings import PruneResult, PruneSettings, _is_structured, resolved
from .streamed import _prune_streamed


def prune_pretrained(
    model: ModelSource | str,
    out: str | Path,
    settings: PruneSettings | None = None,
    *,
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    stream: bool = False,
    command: list[str] | None = None,
    progress: bool = False,
    **overrides: Any,
) -> PruneResult:
    """Load ``model`` (a :class:`ModelSource`, or a Hub id or folder with the default loading), prune it and save
    it to ``out``: the ``hfprune prune`` job.

    The output is checked first so a long run never ends in "already exists". ``stream``: never hold the whole
    model; blocks are read and written one at a time (one shard per block; see :mod:`hfprune.models.streaming`).
    ``placement``: spread the loaded model over GPUs, CPU and disk (``--device-map``); each block still comes to
    the compute device alone for its turn (``ModelSource.placement``). ``settings`` and ``overrides`` as for
    :func:`prune`; the compute device is resolved once, here.

    Under a launcher (``torchrun``, ``accelerate launch``) every rank loads the model and prunes on its share of
    the calibration batches; rank 0 alone writes ``out``, and every rank returns once it is written (or raises
    rank 0's error).
    """
    source = ModelSource.of(model)
    _refuse_loading_overrides(overrides)
    settings = resolved((settings or PruneSettings()).with_overrides(**overrides))
    group = distributed.current()
    group.agree(lambda: check_output(out, overwrite, reads=source.model), "checking the output folder")
    check_shard_size(max_shard_size)
    extra = {"command": portable_command(list(command))} if command else {}
    if source.placement is not None:
        extra["placement"] = source.placement.describe()
    if stream and _is_structured(settings.structure):
        raise StreamingUnsupportedError(
            f"--structure {settings.structure} changes tensor shapes and the config as a whole, which --stream "
            "(one block written at a time) cannot; run without --stream"
        )
    if settings.heal is not None:
        _check_can_heal(stream, source, group)
    if stream:
        if source.placement is not None:
            raise InvalidOptionError("--stream reads one block at a time and needs no --device-map; give one of them")
        return _prune_streamed(source, out, settings, overwrite=overwrite, extra=extra, progress=progress)
    started = time.perf_counter()
    loaded = source.load()
    load_s = time.perf_counter() - started
    result = prune_resolved(loaded.model, loaded.tokenizer, settings, progress=progress)
    if settings.heal is not None:
        loaded.model, result.healing = _heal(loaded.model, loaded.tokenizer, source, result, settings.heal, progress)
    result.base_model = loaded.source
    result.timings["load_s"] = load_s
    _record_ranks(result, group, settings)
    local_base = loaded.folder if loaded.source.get("local") else None

    def save() -> tuple[float, dict[str, float]]:
        began = time.perf_counter()
        save_pruned(
            loaded.model,
            loaded.tokenizer,
            result,
            out,
            overwrite=overwrite,
            max_shard_size=max_shard_size,
            extra=extra,
            local_base=local_base,
            base_folder=loaded.folder,
        )
        return time.perf_counter() - began, peak_memory(settings.device)

    try:
        result.timings["save_s"], result.peak_memory = group.agree(save, "writing the pruned model (rank 0)")
    finally:
        release(loaded.model)  # offloaded weights (pruned ones included) are in the output now
    return result


def _check_can_heal(stream: bool, source: ModelSource, group: distributed.Group) -> None:
    """``--heal`` trains the whole model after pruning: refused, before any work, where that cannot run."""
    if stream:
        raise InvalidOptionError("--heal trains the whole pruned model, which --stream never holds; drop one of them")
    if source.placement is not None:
        raise InvalidOptionError(
            "--heal trains the model on one device; drop --device-map, or heal the output with `hfprune heal`"
        )
    if group.size > 1:
        raise InvalidOptionError(
            "--heal after pruning runs in one process; prune under the launcher, then heal the output with "
            "`accelerate launch -m hfprune heal ...`"
        )


def _heal(
    model: Any, tokenizer: Any, source: ModelSource, result: PruneResult, settings: HealSettings, progress: bool
) -> tuple[Any, dict[str, Any]]:
    """Distil the dense base (loaded again as the teacher) into the pruned model, on text that is not the mask's;
    a trimmed vocabulary is aligned through its map (:mod:`hfprune.healing`)."""
    teacher = source.load()
    trimmed = result.trimmed
    try:
        healed = heal(
            model,
            teacher.model,
            trimmed.tokenizer if trimmed is not None else tokenizer,
            settings,
            teacher_tokenizer=teacher.tokenizer,
            vocab_map=trimmed.id_map() if trimmed is not None else None,
            base_tokenizer_sha256=trimmed.record.get("tokenizer_sha256_before") if trimmed is not None else None,
            exclude_hashes=result.calibration.get("sample_hashes") or (),
            progress=progress,
        )
    finally:
        release(teacher.model)
    return healed.model, {"teacher": teacher_record(teacher.source), **healed.record}


_LOADING_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelSource)) - {"model"}


def _refuse_loading_overrides(overrides: dict[str, Any]) -> None:
    """``revision=`` and the like say how to load, not how to prune: they belong in the :class:`ModelSource`."""
    misplaced = sorted(_LOADING_FIELDS & overrides.keys())
    if misplaced:
        raise TypeError(
            f"prune_pretrained: {', '.join(misplaced)} say how the model is loaded; pass "
            f"hfprune.ModelSource(model, {', '.join(f'{name}=...' for name in misplaced)}) as the model"
        )
