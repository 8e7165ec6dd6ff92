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
    open_source,
)
from .constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_METHOD,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
    METADATA_FILE,
    VERSION,
)
from .errors import (
    CalibrationSourceError,
    InvalidOptionError,
    InvalidProfileError,
    StreamingUnsupportedError,
)
from .io import atomic_folder, check_output, write_json
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
from .pruning.stats import needs_gradients
from .pruning.structure import Structure, resolve_sparsity
from .system import library_versions, peak_memory, resolve_device


@dataclass(frozen=True)
class PruneSettings:
    """What to prune and how: everything ``hfprune prune`` takes except where the model comes from and goes.

    Attributes:
        method: a registered method name (``hfprune.methods()`` lists them).
        method_params: the method's options (e.g. ``{"percdamp": 0.01}`` for SparseGPT).
        sparsity: share of each pruned layer's weights set to zero, in [0, 1); ``None``: implied by N:M, else 0.5.
        structure: ``"unstructured"`` or ``"N:M"`` (N zeros in every M consecutive inputs).
        calibration: ready samples, a language mix (``Mix`` or ``"en:64,sw:64"``), or ``None`` (128 samples spread
            over the source's languages). Ignored by methods that need no data.
        calib_source: where the mix is drawn from: a ``TextSource``, a ``SourceSpec``, a folder, a dataset id, or
            ``None`` for the shared calibration corpora.
        seqlen, seed: sample length in tokens and the sampling seed.
        device: compute device; ``None`` or ``"auto"`` picks CUDA when available.
        batch_size: calibration samples per forward (the activation peak grows with it).
        profile: layerwise sparsity, ``"uniform"``, ``"owl"``, ``"crosslingual"`` or a profile object
            (``hfprune.pruning.profiles``); measured on the dense model with the same calibration set.
        pipeline: ``"sequential"`` (each block calibrated on the pruned outputs before it; two passes per block)
            or ``"independent"`` (all blocks on dense inputs; one pass per block, about half the cost).
        offload: keep calibration activations on CPU between uses, bounding accelerator memory to one block
            plus one batch.
    """

    method: str = DEFAULT_METHOD
    method_params: dict[str, Any] = field(default_factory=dict)
    sparsity: float | None = None
    structure: Structure | str = "unstructured"
    calibration: CalibrationSet | Mix | str | None = None
    calib_source: CalibrationSource = None
    seqlen: int = DEFAULT_SEQLEN
    seed: int = DEFAULT_SEED
    device: str | torch.device | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    profile: SparsityProfile | str | None = None
    pipeline: str = "sequential"
    offload: bool = False

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
        return {
            "method": self.method, "method_params": dict(sorted(self.method_params.items())),
            "sparsity": self.sparsity, "structure": str(self.structure), "calibration": str(calibration),
            "calib_source": _describe_source(self.calib_source), "seqlen": self.seqlen, "seed": self.seed,
            "batch_size": self.batch_size, "profile": profile, "pipeline": self.pipeline,
        }  # fmt: skip


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
        }


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

    Under a launcher (``torchrun``, ``accelerate launch``) the ranks share the calibration batches and end with
    identical weights, those of a single-process run (``hfprune.pruning.engine``); every rank must call this
    with the same model and settings. To prune alone on one rank, call it inside
    ``hfprune.distributed.within(hfprune.distributed.Group())``.

    Raises:
        InvalidSparsityError, InvalidStructureError, UnknownMethodError, InvalidMethodParameterError,
        InvalidProfileError, InvalidPipelineError, calibration errors.
    """
    settings = (settings or PruneSettings()).with_overrides(**overrides)
    structure = Structure.parse(settings.structure)
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

    started = time.perf_counter()
    calib = None
    if method.needs_calibration or layer_profile is not None:
        calib = calibration_set(tokenizer, settings)
        group.check_same(
            calib.sample_hashes, "calibration samples",
            "every rank must read the same text with the same tokenizer (same --calib-source, files and seed)",
        )  # fmt: skip
    calib_s = time.perf_counter() - started

    was_training = model.training
    model.eval()
    profile_info: dict[str, Any] = {}
    if layer_profile is not None:
        assert calib is not None
        allocation = layer_profile.build(
            model, calib, target, device=compute, batch_size=settings.batch_size, input_cache=input_cache,
            loader=loader,
        )  # fmt: skip
        sparsity_fn, profile_info = allocation, {**layer_profile.describe(), **allocation.to_dict()}
    pruner = Pruner(method, sparsity=target, structure=structure, sparsity_fn=sparsity_fn)
    timings = BlockwiseEngine(
        model, pruner, calibration=calib, device=compute, batch_size=settings.batch_size, progress=progress,
        input_cache=input_cache, pipeline=settings.pipeline, offload=settings.offload, loader=loader,
    ).run()  # fmt: skip  # fmt: skip
    model.train(was_training)
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
        distributed=distributed.describe(group),
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
) -> Path:
    """Write the pruned model, its tokenizer and ``hfprune.json`` to ``out`` atomically.

    Weights are dense safetensors holding the zeros: sparse storage formats were removed upstream and
    loaders now mis-load them silently, so dense is the format every ``from_pretrained`` reads right.
    """
    if is_dispatched(model):
        # accelerate gives each offloaded module its own meta parameter, which unties a tied head from the
        # embeddings; tied again, the head is saved once (as save_pretrained does for a model in memory)
        model.tie_weights()
    with atomic_folder(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        _finish_folder(tmp, tokenizer, {**result.to_dict(), **(extra or {})})
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
    group.agree(lambda: check_output(out, overwrite), "checking the output folder")
    extra = {"command": list(command)} if command else {}
    if placement is not None:
        extra["placement"] = placement.describe()
    if stream:
        if placement is not None:
            raise InvalidOptionError("--stream reads one block at a time and needs no --device-map; give one of them")
        return _prune_streamed(
            model_id, out, settings, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype,
            overwrite=overwrite, extra=extra, progress=progress,
        )  # fmt: skip
    started = time.perf_counter()
    loaded = load_model(
        model_id, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype, placement=placement
    )
    load_s = time.perf_counter() - started
    result = prune(loaded.model, loaded.tokenizer, settings, progress=progress)
    result.base_model = loaded.source
    result.timings["load_s"] = load_s
    _record_ranks(result, group, settings)

    def save() -> tuple[float, dict[str, float]]:
        began = time.perf_counter()
        save_pruned(
            loaded.model, loaded.tokenizer, result, out, overwrite=overwrite, max_shard_size=max_shard_size, extra=extra
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
    in-memory run: the engine does the same work in the same order (tested)."""
    from transformers import GenerationConfig

    method = get_method(settings.method, **settings.method_params)
    if needs_gradients(method.needs):
        raise StreamingUnsupportedError(
            f"--method {method.name} back-propagates through the whole model, which --stream never holds in "
            "memory; run without --stream"
        )
    started = time.perf_counter()
    folder = checkpoint_folder(model_id, revision=revision, token=token)
    model = skeleton(folder, dtype=dtype, trust_remote_code=trust_remote_code)
    stacks = find_block_stacks(model)
    if len(stacks) != 1:
        raise StreamingUnsupportedError(f"--stream handles one stack of blocks; this model has {len(stacks)}")
    stack = stacks[0]
    reader = CheckpointReader(folder)
    load_non_block_weights(model, stack.name, reader)
    loader = StreamedBlocks(stack.blocks, stack.name, reader)
    tokenizer = load_tokenizer(folder, trust_remote_code)
    load_s = time.perf_counter() - started
    group = distributed.current()
    # Rank 0 writes; the other ranks read every block too (they calibrate on their own batches) but write nothing.
    with atomic_folder(out, overwrite=overwrite) if group.is_main else nullcontext(None) as tmp:
        writer = loader.writer = ShardWriter(tmp, len(stack.blocks) + 1) if tmp is not None else None
        result = prune(model, tokenizer, settings, loader=loader, progress=progress)
        _record_ranks(result, group, settings)
        if tmp is None or writer is None:
            return _after_rank0_wrote(result, group)
        if not loader.all_written():
            raise RuntimeError("a block was never written; the output is incomplete and was discarded")
        started = time.perf_counter()
        writer.write(non_block_state(model, stack.name))
        writer.finish()
        model.config.save_pretrained(tmp)
        try:
            GenerationConfig.from_pretrained(folder).save_pretrained(tmp)
        except OSError:
            pass  # the source has none
        result.base_model = describe_source(str(model_id), revision, folder)
        result.timings["load_s"] = load_s
        result.timings["save_s"] = time.perf_counter() - started
        result.peak_memory = peak_memory(distributed.rank_device(resolve_device(settings.device)))
        _finish_folder(tmp, tokenizer, {**result.to_dict(), "streamed": True, **extra})
    return _after_rank0_wrote(result, group)


def _after_rank0_wrote(result: PruneResult, group: distributed.Group) -> PruneResult:
    """Every rank returns once rank 0 has moved the streamed output into place (a rank that failed is noticed)."""
    group.barrier("waiting for rank 0 to write the pruned model")
    return result


def _finish_folder(folder: Path, tokenizer: Any, metadata: dict[str, Any]) -> None:
    """What every output folder gets beside its weights: the tokenizer and ``hfprune.json``."""
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    write_json(folder / METADATA_FILE, metadata)


def _describe_source(source: CalibrationSource) -> Any:
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    if dataclasses.is_dataclass(source):
        return asdict(source)  # type: ignore[arg-type]
    return source.describe()
