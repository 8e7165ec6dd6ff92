"""The library API the CLI mirrors: :func:`prune` a model in memory, :func:`save_pruned`, :func:`prune_pretrained`.

>>> import hfprune
>>> result = hfprune.prune(model, tokenizer, method="wanda", sparsity=0.5, calibration="en:64,sw:64")
>>> result.sparsity, result.by_kind()

What to prune and how is one typed :class:`PruneSettings`; ``prune`` and ``prune_pretrained`` also take its
fields as keywords (and a method's parameters, such as ``percdamp=0.01``), checked against it by name.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .calibration import (
    CalibrationSet,
    CalibrationSource,
    Mix,
    build_calibration,
    normalize,
    open_source,
)
from .constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LANG_AGG,
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_METHOD,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
    METADATA_FILE,
    SPEED_PROMPT_TOKENS,
    VERSION,
)
from .errors import (
    CalibrationSourceError,
    HfpruneWarning,
    InvalidOptionError,
    InvalidProfileError,
    InvalidStructuredSpecError,
    SequenceTooLongError,
    StreamingUnsupportedError,
    UnknownLanguageError,
)
from .io import atomic_folder, check_output, portable_command, write_json, write_local_record
from .models import (
    Placement,
    all_prunable_layers,
    checkpoint_folder,
    describe_source,
    find_block_stacks,
    is_dispatched,
    load_model,
    load_tokenizer,
    release,
)
from .models.discovery import position_limit
from .models.speed import measure_speed
from .models.streaming import (
    CheckpointReader,
    ShardWriter,
    StreamedBlocks,
    load_non_block_weights,
    non_block_state,
    skeleton,
)
from .pruning.engine import BlockLoader, BlockwiseEngine, LayerReport, Pruner, SparsityFn
from .pruning.methods import get_method
from .pruning.profiles import SparsityProfile, make_profile, resolve_profile
from .pruning.sparsity_pattern import Structure, resolve_sparsity
from .pruning.stats import needs_gradients
from .pruning.structured import (
    StructuredSpec,
    check_lang_agg,
    is_structured,
    parameter_counts,
    parse_structure,
    plan_removal,
    prune_structured,
)
from .system import library_versions, peak_memory, resolve_device
from .vocab import VocabSettings, VocabTrimResult, save_trimmed, trim_vocab


@dataclass(frozen=True)
class PruneSettings:
    """What to prune and how: everything ``hfprune prune`` takes except where the model comes from and goes.

    Attributes:
        method: a registered method name (``hfprune.methods()`` lists them).
        method_params: the method's options (e.g. ``{"percdamp": 0.01}`` for SparseGPT).
        sparsity: share of each pruned layer's weights set to zero, in [0, 1); ``None``: implied by N:M, else 0.5.
        structure: ``"unstructured"`` or ``"N:M"`` (N zeros in every M consecutive inputs); or structured removal,
            ``"width:F"``, ``"heads:K"``, ``"depth:K"`` or a comma-combination (``"width:0.25,depth:2"``): whole MLP
            neurons, attention heads or blocks leave and a smaller dense model remains (no sparsity, no profile).
        calibration: ready samples, a language mix (``Mix`` or ``"en:64,sw:64"``), or ``None`` (128 samples spread
            over the source's languages). Ignored by methods that need no data.
        calib_source: where the mix is drawn from: a ``TextSource``, a ``SourceSpec``, a folder, a dataset id, or
            ``None`` for hfprune's default calibration text.
        seqlen, seed: sample length in tokens and the sampling seed.
        device: compute device; ``None`` or ``"auto"`` picks CUDA when available.
        batch_size: calibration samples per forward (the activation peak grows with it).
        profile: layerwise sparsity, ``"uniform"``, ``"owl"``, ``"crosslingual"`` or a profile object
            (``hfprune.pruning.profiles``); measured on the dense model with the same calibration set.
        pipeline: ``"sequential"`` (each block calibrated on the pruned outputs before it; two passes per block)
            or ``"independent"`` (all blocks on dense inputs; one pass per block, about half the cost).
        offload: keep calibration activations on CPU between uses, bounding accelerator memory to one block
            plus one batch.
        vocab: also trim the vocabulary to these settings' languages (default: the calibration mix's), before
            pruning, so calibration already sees the trimmed tokenizer (:mod:`hfprune.vocab`).
        lang_agg: structured pruning only (``structure="width:0.25,depth:2"``, ...): how per-language importance
            scores are combined, ``"pooled"``, ``"mean"``, ``"min"`` or ``"max"`` (``None``: the default, see
            :mod:`hfprune.pruning.structured.importance`).
        refit: structured pruning only: refit the output projections of kept neurons and heads by least squares
            on the calibration activations (``False`` for the ablation).
        measure_speed: structured pruning only: measure prefill and decode tokens/s on CPU before and after
            (``hfprune prune`` does; recorded in ``hfprune.json`` and shown on the card).
    """

    method: str = DEFAULT_METHOD
    method_params: dict[str, Any] = field(default_factory=dict)
    sparsity: float | None = None
    structure: Structure | StructuredSpec | str = "unstructured"
    calibration: CalibrationSet | Mix | str | None = None
    calib_source: CalibrationSource = None
    seqlen: int = DEFAULT_SEQLEN
    seed: int = DEFAULT_SEED
    device: str | torch.device | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    profile: SparsityProfile | str | None = None
    pipeline: str = "sequential"
    offload: bool = False
    vocab: VocabSettings | None = None
    lang_agg: str | None = None
    refit: bool = True
    measure_speed: bool = False

    def with_overrides(self, **overrides: Any) -> PruneSettings:
        """A copy with ``overrides``: names of fields set those fields, any other name is a method parameter
        (checked by the method when it is built)."""
        names = {f.name for f in dataclasses.fields(self)}
        params = {**self.method_params, **overrides.pop("method_params", {})}
        params.update({k: v for k, v in overrides.items() if k not in names})
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if k in names}, method_params=params)

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-friendly data (what ``hfprune run`` hashes to decide whether to prune again)."""
        profile = self.profile.describe() if isinstance(self.profile, SparsityProfile) else self.profile
        calibration = self.calibration.spec if isinstance(self.calibration, CalibrationSet) else self.calibration
        # structured keys only for structured runs: the hashes of earlier runs' settings stay what they were
        structured = (
            {"lang_agg": self.lang_agg or DEFAULT_LANG_AGG, "refit": self.refit}
            if _is_structured(self.structure)
            else {}
        )
        return structured | {
            "method": self.method,
            "method_params": dict(sorted(self.method_params.items())),
            "sparsity": self.sparsity,
            "structure": str(self.structure),
            "calibration": str(calibration),
            "calib_source": _describe_source(self.calib_source),
            "seqlen": self.seqlen,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "profile": profile,
            "pipeline": self.pipeline,
            **({"vocab": self.vocab.describe()} if self.vocab is not None else {}),
        }


@dataclass
class PruneResult:
    """What a pruning run did: enough to write a card and to reproduce the run."""

    method: str
    params: dict[str, Any]
    target_sparsity: float
    structure: str
    layers: list[LayerReport]
    calibration: dict[str, Any]
    timings: dict[str, float]
    peak_memory: dict[str, float]
    device: str
    seed: int | None = None
    base_model: dict[str, Any] = field(default_factory=dict)
    sparsity_profile: dict[str, Any] = field(default_factory=dict)
    pipeline: str = "sequential"
    #: the vocabulary trimming done before pruning (its tokenizer replaces the one passed in), if any
    trimmed: VocabTrimResult | None = None
    #: structured pruning: what was removed, sizes and speed (``None`` for zero-making pruning)
    structured: dict[str, Any] | None = None
    #: the processes that pruned (``hfprune.distributed.describe``): launcher and world size
    distributed: dict[str, Any] = field(default_factory=lambda: {"launcher": "none", "world_size": 1})

    @property
    def sparsity(self) -> float:
        """Achieved sparsity over all pruned layers' weights."""
        total = sum(layer.shape[0] * layer.shape[1] for layer in self.layers)
        return sum(layer.zeros for layer in self.layers) / total if total else 0.0

    def by_kind(self) -> dict[str, dict[str, float]]:
        """Achieved sparsity and parameter count per module type (q_proj, down_proj, ...)."""
        out: dict[str, dict[str, float]] = {}
        for layer in self.layers:
            row = out.setdefault(layer.kind, {"layers": 0, "params": 0, "zeros": 0})
            row["layers"] += 1
            row["params"] += layer.shape[0] * layer.shape[1]
            row["zeros"] += layer.zeros
        for row in out.values():
            row["sparsity"] = row["zeros"] / row["params"] if row["params"] else 0.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "hfprune_version": VERSION,
            "method": self.method,
            "params": self.params,
            "target_sparsity": self.target_sparsity,
            "structure": self.structure,
            "pipeline": self.pipeline,
            "achieved_sparsity": self.sparsity,
            "seed": self.seed,
            "device": self.device,
            "base_model": self.base_model,
            "calibration": self.calibration,
            "sparsity_profile": self.sparsity_profile,
            "sparsity_by_kind": self.by_kind(),
            "layers": [asdict(layer) for layer in self.layers],
            "timings": self.timings,
            "peak_memory": self.peak_memory,
            "distributed": self.distributed,
            "versions": library_versions(),
            **({"vocab": self.trimmed.record} if self.trimmed is not None else {}),
        } | ({"structured": self.structured} if self.structured is not None else {})


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
    settings = (settings or PruneSettings()).with_overrides(**overrides)
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
    compute = distributed.rank_device(resolve_device(settings.device))
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


def check_sequence_length(model: nn.Module, seqlen: int) -> None:
    """Refuse samples longer than a learned position table; warn when they pass a rotary model's trained range.

    Raises:
        SequenceTooLongError: the model's positions are a learned table with fewer than ``seqlen`` rows.
    """
    limit, learned = position_limit(model)
    if limit is None or seqlen <= limit:
        return
    if learned:
        raise SequenceTooLongError(
            f"--seqlen {seqlen} is longer than the {limit} positions this model has learned; use --seqlen {limit} or less"
        )
    warnings.warn(
        f"--seqlen {seqlen} is beyond this model's max_position_embeddings ({limit}): calibration runs outside the "
        f"positions it was trained on; --seqlen {limit} or less keeps it inside",
        HfpruneWarning,
        stacklevel=3,
    )


def _seqlen(settings: PruneSettings) -> int:
    calibration = settings.calibration
    return calibration.seqlen if isinstance(calibration, CalibrationSet) else settings.seqlen


def check_shard_size(max_shard_size: str | int) -> int:
    """The shard size in bytes; checked before any work, not after pruning.

    Raises:
        InvalidOptionError: not a size such as ``2GB`` or ``500MB``.
    """
    from transformers.utils.hub import convert_file_size_to_int

    try:
        size = convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError):
        size = 0
    if not isinstance(size, int) or size <= 0:
        raise InvalidOptionError(f"--max-shard-size {max_shard_size!r} is not a size; write it as e.g. 2GB or 500MB")
    return size


def trim_for_pruning(model: nn.Module, tokenizer: Any, settings: PruneSettings, **options: Any) -> VocabTrimResult:
    """Trim the vocabulary as ``settings.vocab`` says, to the calibration mix's languages unless it names its own,
    from the calibration source unless it names its own."""
    assert settings.vocab is not None
    if tokenizer is None:
        raise CalibrationSourceError("trimming the vocabulary needs the model's tokenizer, and this model has none")
    vocab = settings.vocab if settings.vocab.langs else settings.vocab.with_langs(calibration_languages(settings))
    return trim_vocab(model, tokenizer, vocab, source=settings.calib_source, **options)


def calibration_languages(settings: PruneSettings) -> list[str]:
    """The languages a run calibrates on: its mix's, its samples', or every language its source holds."""
    if isinstance(settings.calibration, CalibrationSet):
        return list(dict.fromkeys(settings.calibration.languages))
    if settings.calibration is not None:
        return Mix.parse(settings.calibration).languages
    found = []
    for key in open_source(settings.calib_source).languages():
        try:
            found.append(normalize(key))
        except UnknownLanguageError:
            continue  # a file such as notes.txt is not a language
    return Mix.even(sorted(set(found))).languages


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
    compute = resolve_device(settings.device)
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


def _is_structured(structure: Any) -> bool:
    return isinstance(structure, StructuredSpec) or (isinstance(structure, str) and is_structured(structure))


def _refuse_structured_options(settings: PruneSettings, structure: Structure) -> None:
    """``lang_agg`` and ``refit=False`` choose how structures are removed: with zero-making pruning they would be
    silently ignored, so they are refused."""
    if settings.lang_agg is not None or not settings.refit:
        given = "--lang-agg" if settings.lang_agg is not None else "--no-refit"
        raise InvalidStructuredSpecError(
            f"{given} applies to structured pruning (--structure width:F, heads:K or depth:K), not to {structure} "
            "sparsity; leave it out or ask for a structured removal"
        )


def calibration_set(tokenizer: Any, settings: PruneSettings) -> CalibrationSet:
    """The samples ``settings`` asks for: given ready, or drawn from its source with the tokenizer."""
    if isinstance(settings.calibration, CalibrationSet):
        return settings.calibration
    if tokenizer is None:
        raise CalibrationSourceError("calibration text needs a tokenizer, and this model has none")
    mix = Mix.parse(settings.calibration) if settings.calibration is not None else None
    source = open_source(settings.calib_source, langs=mix.languages if mix else ())
    return build_calibration(tokenizer, source, mix, seqlen=settings.seqlen, seed=settings.seed)


def save_pruned(
    model: nn.Module,
    tokenizer: Any,
    result: PruneResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    extra: dict[str, Any] | None = None,
    local_base: Path | None = None,
    base_folder: str | Path | None = None,
) -> Path:
    """Write the pruned model, its tokenizer and ``hfprune.json`` to ``out`` atomically.

    ``local_base``: the base model's folder when it is local; kept in a dot-file that is never published (so
    ``hfprune space serve`` finds the dense model) while ``hfprune.json`` records only its name and hashes.

    Weights are dense safetensors holding the zeros: sparse storage formats were removed upstream and
    loaders now mis-load them silently, so dense is the format every ``from_pretrained`` reads right.
    A run that trimmed the vocabulary saves its trimmed tokenizer and ``vocab_map.json`` instead of
    ``tokenizer``; ``base_folder`` (the base checkpoint) lets it record the file sizes before and after.
    """
    if is_dispatched(model):
        # accelerate gives each offloaded module its own meta parameter, which unties a tied head from the
        # embeddings; tied again, the head is saved once (as save_pretrained does for a model in memory)
        model.tie_weights()
    with atomic_folder(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        if result.trimmed is not None:
            save_trimmed(tmp, result.trimmed, Path(base_folder) if base_folder else None)
            tokenizer = None
        _finish_folder(tmp, tokenizer, {**result.to_dict(), **(extra or {})}, local_base)
    return Path(out)


def prune_pretrained(
    model_id: str,
    out: str | Path,
    settings: PruneSettings | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    stream: bool = False,
    command: list[str] | None = None,
    progress: bool = False,
    placement: Placement | None = None,
    **overrides: Any,
) -> PruneResult:
    """Load ``model_id`` (Hub id or folder), prune it and save it to ``out``: the ``hfprune prune`` job.

    The output is checked first so a long run never ends in "already exists". ``stream``: never hold the whole
    model; blocks are read and written one at a time (one shard per block; see :mod:`hfprune.models.streaming`).
    ``placement``: spread the loaded model over GPUs, CPU and disk (``--device-map``); each block still comes to
    the compute device alone for its turn. ``settings`` and ``overrides`` as for :func:`prune`.

    Under a launcher (``torchrun``, ``accelerate launch``) every rank loads the model and prunes on its share of
    the calibration batches; rank 0 alone writes ``out``, and every rank returns once it is written (or raises
    rank 0's error).
    """
    settings = (settings or PruneSettings()).with_overrides(**overrides)
    group = distributed.current()
    group.agree(lambda: check_output(out, overwrite, reads=model_id), "checking the output folder")
    check_shard_size(max_shard_size)
    resolve_device(settings.device)
    extra = {"command": portable_command(list(command))} if command else {}
    if placement is not None:
        extra["placement"] = placement.describe()
    if stream and _is_structured(settings.structure):
        raise StreamingUnsupportedError(
            f"--structure {settings.structure} changes tensor shapes and the config as a whole, which --stream "
            "(one block written at a time) cannot; run without --stream"
        )
    if stream:
        if placement is not None:
            raise InvalidOptionError("--stream reads one block at a time and needs no --device-map; give one of them")
        return _prune_streamed(
            model_id,
            out,
            settings,
            revision=revision,
            token=token,
            trust_remote_code=trust_remote_code,
            dtype=dtype,
            overwrite=overwrite,
            extra=extra,
            progress=progress,
        )
    started = time.perf_counter()
    loaded = load_model(
        model_id, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype, placement=placement
    )
    load_s = time.perf_counter() - started
    result = prune(loaded.model, loaded.tokenizer, settings, progress=progress)
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
            base_folder=loaded.folder if result.trimmed is not None else None,
        )
        return time.perf_counter() - began, peak_memory(distributed.rank_device(resolve_device(settings.device)))

    try:
        result.timings["save_s"], result.peak_memory = group.agree(save, "writing the pruned model (rank 0)")
    finally:
        release(loaded.model)  # offloaded weights (pruned ones included) are in the output now
    return result


def _record_ranks(result: PruneResult, group: distributed.Group, settings: PruneSettings) -> None:
    """With several ranks, what each one took (peak memory, prune time): rank 0 writes them all."""
    if group.size == 1:
        return
    mine = {**peak_memory(distributed.rank_device(resolve_device(settings.device))), **result.timings}
    result.distributed["ranks"] = group.all_gather_object(mine, "gathering each rank's time and memory")


def _prune_streamed(
    model_id: str,
    out: str | Path,
    settings: PruneSettings,
    *,
    revision: str | None,
    token: str | bool | None,
    trust_remote_code: bool,
    dtype: str,
    overwrite: bool,
    extra: dict[str, Any],
    progress: bool,
) -> PruneResult:
    """``prune --stream``: the model is a skeleton on ``meta``; each block is read from the checkpoint when the
    engine reaches it and written to its own shard as soon as it is pruned. The masks are those of the
    in-memory run: the engine does the same work in the same order (tested). A vocabulary trim runs first on the
    embeddings and head (loaded anyway); its logits check loads each block only for its own call."""
    method = get_method(settings.method, **settings.method_params)
    if needs_gradients(method.needs):
        raise StreamingUnsupportedError(
            f"--method {method.name} back-propagates through the whole model, which --stream never holds in "
            "memory; run without --stream"
        )
    started = time.perf_counter()
    folder = checkpoint_folder(model_id, revision=revision, token=token, trust_remote_code=trust_remote_code)
    model = skeleton(folder, dtype=dtype, trust_remote_code=trust_remote_code)
    stacks = find_block_stacks(model)
    if len(stacks) != 1:
        raise StreamingUnsupportedError(f"--stream handles one stack of blocks; this model has {len(stacks)}")
    stack = stacks[0]
    reader = CheckpointReader(folder)
    load_non_block_weights(model, stack.name, reader)
    loader = StreamedBlocks(stack.blocks, stack.name, reader)
    tokenizer = load_tokenizer(folder, trust_remote_code)
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
        result = prune(model, tokenizer, settings, loader=loader, progress=progress)
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
        result.base_model = describe_source(str(model_id), revision, folder)
        result.timings["load_s"] = load_s
        result.timings["save_s"] = time.perf_counter() - started
        result.peak_memory = peak_memory(distributed.rank_device(resolve_device(settings.device)))
        local_base = folder if result.base_model.get("local") else None
        _finish_folder(tmp, None if trimmed else tokenizer, {**result.to_dict(), "streamed": True, **extra}, local_base)
    return _after_rank0_wrote(result, group)


def _after_rank0_wrote(result: PruneResult, group: distributed.Group) -> PruneResult:
    """Every rank returns once rank 0 has moved the streamed output into place (a rank that failed is noticed)."""
    group.barrier("waiting for rank 0 to write the pruned model")
    return result


def _generation_config(folder: Path) -> Any:
    """The checkpoint's generation config, or ``None`` when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(folder)
    except OSError:
        return None


def _finish_folder(folder: Path, tokenizer: Any, metadata: dict[str, Any], local_base: Path | None = None) -> None:
    """What every output folder gets beside its weights: the tokenizer, ``hfprune.json`` and, for a local base,
    the never-published record of where it is."""
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    write_json(folder / METADATA_FILE, metadata)
    if local_base is not None:
        write_local_record(folder, local_base)


def _describe_source(source: CalibrationSource) -> Any:
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    if dataclasses.is_dataclass(source):
        return asdict(source)  # type: ignore[arg-type]
    return source.describe()
