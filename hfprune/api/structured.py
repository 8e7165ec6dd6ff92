"""The structured path: remove neurons, heads and blocks chosen on every calibration language."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..calibration import CalibrationSet
from ..constants import DEFAULT_LANG_AGG, SPEED_PROMPT_TOKENS
from ..errors import InvalidStructuredSpecError
from ..models import find_block_stacks
from ..models.speed import measure_speed
from ..pruning.structured import StructuredSpec, check_lang_agg, parameter_counts, plan_removal, prune_structured
from ..system import peak_memory
from .preparation import _seqlen, calibration_set, check_sequence_length, trim_for_pruning
from .settings import PruneResult, PruneSettings


def _prune_structured(
    model: nn.Module,
    tokenizer: Any,
    settings: PruneSettings,
    spec: StructuredSpec,
    *,
    input_cache: dict[str, Any] | None,
    progress: bool,
) -> PruneResult:
    """:func:`prune` for ``width:F`` / ``heads:K`` / ``depth:K``: remove structures, see :mod:`hfprune.pruning.structured`."""
    spec.check_settings(
        sparsity=settings.sparsity,
        method=settings.method,
        method_params=settings.method_params,
        profile=settings.profile,
    )
    lang_agg = check_lang_agg(settings.lang_agg or DEFAULT_LANG_AGG)
    if distributed.current().size > 1:
        raise InvalidStructuredSpecError(
            f"--structure {spec} runs in one process (its block influence and refit are not shared over ranks); "
            "start it without torchrun or accelerate launch"
        )
    plan_removal(model, spec)  # refuse an impossible spec before calibration text is read
    check_sequence_length(model, _seqlen(settings))
    compute = settings.device
    assert isinstance(compute, torch.device), "structured pruning takes resolved settings"
    if compute.type == "cuda":
        torch.cuda.reset_peak_memory_stats(compute)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    calib = calibration_set(tokenizer, settings) if settings.vocab is None or settings.measure_speed else None
    calib_s = time.perf_counter() - started
    # the dense model, before any trimming: what the user starts from
    speed_before = measure_speed(model, _speed_prompt(calib)) if calib is not None and settings.measure_speed else None
    trimmed = untrimmed = None
    if settings.vocab is not None:  # calibration text in the trimmed tokenizer's ids
        untrimmed = parameter_counts(model, find_block_stacks(model)[0].blocks)
        trimmed = trim_for_pruning(model, tokenizer, settings, measure_after=False)
        tokenizer = trimmed.tokenizer
        started = time.perf_counter()
        calib = calibration_set(tokenizer, settings)
        calib_s = time.perf_counter() - started
    assert calib is not None
    started = time.perf_counter()
    report = prune_structured(
        model,
        calib,
        spec,
        lang_agg=lang_agg,
        refit=settings.refit,
        device=compute,
        batch_size=settings.batch_size,
        pipeline=settings.pipeline,
        offload=settings.offload,
        progress=progress,
        input_cache=input_cache,
    )
    prune_s = time.perf_counter() - started
    record = report.to_dict()
    if untrimmed is not None:  # sizes "before" are the model the user started from, not the trimmed one
        record["params_after_vocab_trim"], record["params_before"] = record["params_before"], untrimmed
    if speed_before is not None:
        after = measure_speed(model, _speed_prompt(calib))
        record["speed"] = {"dense": speed_before.to_dict(), "pruned": after.to_dict()}
    if trimmed is not None:
        trimmed.measure_after(model)  # the final model: trimmed and pruned
    model.train(was_training)
    return PruneResult(
        method=settings.method,
        params={"lang_agg": lang_agg, "refit": settings.refit},
        target_sparsity=0.0,
        structure=str(spec),
        layers=[],
        calibration=calib.spec,
        timings={"calibration_data_s": calib_s, "prune_s": prune_s},
        peak_memory=peak_memory(compute),
        device=str(compute),
        seed=settings.seed,
        pipeline=settings.pipeline,
        structured=record,
        trimmed=trimmed,
    )


def _speed_prompt(calib: CalibrationSet) -> torch.Tensor:
    """One calibration sample's first tokens: the prompt both speed measurements decode after."""
    return calib.input_ids[:1, : min(SPEED_PROMPT_TOKENS, calib.input_ids.shape[1])]
