"""Pruning a model that is in memory (hfprune.prune): one call of the block-by-block engine."""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..errors import HfpruneWarning, InvalidProfileError, InvalidStructuredSpecError
from ..models import all_prunable_layers
from ..pruning.engine import BlockLoader, BlockwiseEngine, Pruner, SparsityFn
from ..pruning.methods import get_method
from ..pruning.profiles import make_profile, resolve_profile
from ..pruning.sparsity_pattern import resolve_sparsity
from ..pruning.structured import StructuredSpec, parse_structure
from ..system import peak_memory
from .preparation import _refuse_structured_options, _seqlen, calibration_set, check_sequence_length, trim_for_pruning
from .settings import PruneResult, PruneSettings, resolved
from .structured import _prune_structured


def prune(
    model: nn.Module,
    tokenizer: Any = None,
    settings: PruneSettings | None = None,
    *,
    sparsity_fn: SparsityFn | None = None,
    input_cache: dict[str, Any] | None = None,
    loader: BlockLoader | None = None,
    progress: bool = False,
    **overrides: Any,
) -> PruneResult:
    """Prune ``model`` in place, block by block, and report what was done.

    Args:
        model: a transformers causal LM (or seq2seq model); its blocks may stay on CPU.
        tokenizer: needed when the calibration is a mix (or ``None``) for a calibrated method.
        settings: what to prune and how (:class:`PruneSettings`); ``overrides`` change single fields, and any
            other keyword is a method parameter (``percdamp=0.01``).
        sparsity_fn: per-layer sparsity, used as given (no profile is measured, not even the method's own);
            ``settings.profile`` is the usual way to get one.
        input_cache: a dict kept across calls on the same dense model and calibration set, to reuse the
            captured first-block inputs (what ``hfprune sweep`` does).
        loader: where blocks' weights come from when the model is not in memory whole
            (``hfprune.models.streaming``); ``None`` for a loaded model.

    With ``settings.vocab`` the vocabulary is trimmed first (in place) and ``result.trimmed.tokenizer`` is the
    model's tokenizer from then on; :func:`save_pruned` saves that one.
    A structured ``settings.structure`` (``"width:0.25,depth:2"``, ...) removes neurons, heads and blocks instead
    of setting zeros; the result's ``structured`` record says what went (see :mod:`hfprune.pruning.structured`).
    Under a launcher (``torchrun``, ``accelerate launch``) the ranks share the calibration batches and end with
    identical weights, those of a single-process run (``hfprune.pruning.engine``); every rank must call this
    with the same model and settings. To prune alone on one rank, call it inside
    ``hfprune.distributed.within(hfprune.distributed.Group())``.

    Raises:
        InvalidSparsityError, InvalidStructureError, UnknownMethodError, InvalidMethodParameterError,
        InvalidProfileError, InvalidPipelineError, calibration errors; for structured removal also
        InvalidStructuredSpecError, UnknownAggregationError and StructuredPruningUnsupportedError.
    """
    settings = resolved((settings or PruneSettings()).with_overrides(**overrides))
    return prune_resolved(
        model, tokenizer, settings, sparsity_fn=sparsity_fn, input_cache=input_cache, loader=loader, progress=progress
    )


def prune_resolved(
    model: nn.Module,
    tokenizer: Any,
    settings: PruneSettings,
    *,
    sparsity_fn: SparsityFn | None = None,
    input_cache: dict[str, Any] | None = None,
    loader: BlockLoader | None = None,
    progress: bool = False,
) -> PruneResult:
    """:func:`prune` with ``settings`` already :func:`resolved` (the device a ``torch.device``): what
    :func:`prune_pretrained` and the streamed path call after resolving once."""
    parsed = parse_structure(settings.structure)
    if isinstance(parsed, StructuredSpec):
        if sparsity_fn is not None or loader is not None:
            raise InvalidStructuredSpecError(
                f"--structure {parsed} removes whole structures: a sparsity_fn or a streaming loader does not apply"
            )
        return _prune_structured(model, tokenizer, settings, parsed, input_cache=input_cache, progress=progress)
    _refuse_structured_options(settings, parsed)
    structure = parsed
    target = resolve_sparsity(settings.sparsity, structure)
    method = get_method(settings.method, **settings.method_params)
    if settings.profile is not None and sparsity_fn is not None:
        raise InvalidProfileError("give either a sparsity profile or a sparsity_fn, not both")
    layer_profile = None
    if sparsity_fn is None:
        chosen = make_profile(settings.profile) if isinstance(settings.profile, str) else settings.profile
        layer_profile = resolve_profile(chosen, method, structure)
    structure.check_widths((layer.name, layer.in_features) for layer in all_prunable_layers(model))
    group = distributed.current()
    compute = settings.device
    assert isinstance(compute, torch.device), "prune_resolved takes resolved settings"
    if compute.type == "cuda":
        torch.cuda.reset_peak_memory_stats(compute)

    if target == 0:
        warnings.warn(
            "sparsity 0 prunes nothing: the output is a dense copy of the model, labelled 0% sparse",
            HfpruneWarning,
            stacklevel=2,
        )
    trimmed = None
    if settings.vocab is not None:
        trimmed = trim_for_pruning(model, tokenizer, settings, measure_after=False)
        tokenizer = trimmed.tokenizer
    started = time.perf_counter()
    calib = None
    if method.needs_calibration or layer_profile is not None:
        check_sequence_length(model, _seqlen(settings))
        calib = calibration_set(tokenizer, settings)
        group.check_same(
            calib.sample_hashes,
            "calibration samples",
            "every rank must read the same text with the same tokenizer (same --calib-source, files and seed)",
        )
    calib_s = time.perf_counter() - started

    was_training = model.training
    model.eval()
    profile_info: dict[str, Any] = {}
    if layer_profile is not None:
        assert calib is not None
        allocation = layer_profile.build(
            model,
            calib,
            target,
            device=compute,
            batch_size=settings.batch_size,
            input_cache=input_cache,
            loader=loader,
        )
        sparsity_fn, profile_info = allocation, {**layer_profile.describe(), **allocation.to_dict()}
    pruner = Pruner(method, sparsity=target, structure=structure, sparsity_fn=sparsity_fn)
    timings = BlockwiseEngine(
        model,
        pruner,
        calibration=calib,
        device=compute,
        batch_size=settings.batch_size,
        progress=progress,
        input_cache=input_cache,
        pipeline=settings.pipeline,
        offload=settings.offload,
        loader=loader,
    ).run()
    model.train(was_training)
    if trimmed is not None and loader is None:
        trimmed.measure_after(model)  # the final model: trimmed and pruned
    return PruneResult(
        method=method.name,
        params=method.params(),
        target_sparsity=target,
        structure=str(structure),
        layers=pruner.layers,
        calibration=calib.spec if calib is not None else {"used": False},
        timings={"calibration_data_s": calib_s, **timings},
        peak_memory=peak_memory(compute),
        device=str(compute),
        seed=settings.seed if calib is not None else None,
        sparsity_profile=profile_info,
        pipeline=settings.pipeline,
        trimmed=trimmed,
        distributed=distributed.describe(group),
    )
