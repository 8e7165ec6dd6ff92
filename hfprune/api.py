"""The library API the CLI mirrors: :func:`prune` a model in memory, :func:`save_pruned`, :func:`prune_pretrained`.

>>> import hfprune
>>> result = hfprune.prune(model, tokenizer, method="wanda", sparsity=0.5, calibration="en:64,sw:64")
>>> result.sparsity, result.by_kind()
"""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .calibration import DEFAULT_SEQLEN, CalibrationSet, build_calibration, open_source, parse_mix
from .errors import CalibrationSourceError
from .models import all_prunable_layers, load_model
from .output import atomic_folder, check_output, write_json
from .pruning.engine import BlockLoader, EngineReport, LayerReport, SequentialPruner, SparsityFn
from .pruning.profiles import InvalidProfileError, SparsityProfile, make_profile, resolve_profile
from .pruning.registry import get_method
from .pruning.structure import Structure, resolve_sparsity

METADATA_FILE = "hfprune.json"


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
            "hfprune_version": __version__,
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
            "versions": library_versions(),
        }


def library_versions() -> dict[str, str]:
    import huggingface_hub
    import safetensors
    import transformers

    return {
        "hfprune": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "safetensors": safetensors.__version__,
    }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when there is one, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (and of the GPU when used) so far, in MiB."""
    peak = {"cpu_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def prune(
    model: nn.Module,
    tokenizer: Any = None,
    *,
    method: str = "wanda",
    sparsity: float | None = 0.5,
    structure: str | Structure = "unstructured",
    calibration: CalibrationSet | str | None = None,
    calib_source: Any = None,
    seqlen: int = DEFAULT_SEQLEN,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int = 2,
    sparsity_fn: SparsityFn | None = None,
    profile: SparsityProfile | str | None = None,
    input_cache: dict[str, Any] | None = None,
    pipeline: str = "sequential",
    offload: bool = False,
    progress: bool = False,
    loader: BlockLoader | None = None,
    **method_params: Any,
) -> PruneResult:
    """Prune ``model`` in place, block by block, and report what was done.

    Args:
        model: a transformers causal LM (or seq2seq model); its blocks may stay on CPU.
        tokenizer: needed when ``calibration`` is a mix string or ``None`` for a calibrated method.
        method: a registered method name (``hfprune.methods()`` lists them).
        sparsity: share of each pruned layer's weights set to zero, in [0, 1); implied by N:M.
        structure: ``"unstructured"`` or ``"N:M"`` (N zeros in every M consecutive inputs).
        calibration: ready samples, a language mix such as ``"en:64,sw:64"``, or ``None`` (128 samples
            spread over the source's languages). Ignored by methods that need no data.
        calib_source: folder path or dataset id the mix is drawn from (default: the shared data).
        seqlen, seed: sample length in tokens and the sampling seed.
        device: compute device; ``None`` picks CUDA when available.
        sparsity_fn: per-layer sparsity, used as given (no profile is measured, not even the method's
            own); ``profile`` is the usual way to get one.
        profile: layerwise sparsity, ``"uniform"``, ``"owl"``, ``"crosslingual"`` or a profile object
            (``hfprune.pruning.profiles``); measured on the dense model with the same calibration set.
        input_cache: a dict kept across calls on the same dense model and calibration set, to reuse the
            captured first-block inputs (what ``hfprune sweep`` does).
        pipeline: ``"sequential"`` (each block calibrated on the pruned outputs before it; two passes per
            block) or ``"independent"`` (all blocks on dense inputs; one pass per block, about half the cost).
        offload: keep calibration activations on CPU between uses, bounding accelerator memory to one
            block plus one batch.
        loader: where blocks' weights come from when the model is not in memory whole
            (``hfprune.streaming``); ``None`` for a loaded model.
        method_params: method options (e.g. ``percdamp=0.01`` for SparseGPT).

    Raises:
        InvalidSparsityError, InvalidStructureError, UnknownMethodError, InvalidProfileError,
        calibration errors.
    """
    structure = Structure.parse(structure)
    target = resolve_sparsity(sparsity, structure)
    pruning_method = get_method(method, **method_params)
    if profile is not None and sparsity_fn is not None:
        raise InvalidProfileError("give either a sparsity profile or a sparsity_fn, not both")
    layer_profile = None
    if sparsity_fn is None:
        chosen = make_profile(profile) if isinstance(profile, str) else profile
        layer_profile = resolve_profile(chosen, pruning_method, structure)
    layers = all_prunable_layers(model)
    structure.check_widths((layer.name, layer.in_features) for layer in layers)
    compute = resolve_device(device)
    if compute.type == "cuda":
        torch.cuda.reset_peak_memory_stats(compute)

    started = time.perf_counter()
    calib = None
    if pruning_method.needs_calibration or layer_profile is not None:
        calib = _calibration_set(tokenizer, calibration, calib_source, seqlen, seed)
    calib_s = time.perf_counter() - started

    was_training = model.training
    model.eval()
    profile_info: dict[str, Any] = {}
    if layer_profile is not None:
        assert calib is not None
        allocation = layer_profile.build(
            model, calib, target, device=compute, batch_size=batch_size, input_cache=input_cache, loader=loader
        )
        sparsity_fn, profile_info = allocation, {**layer_profile.describe(), **allocation.to_dict()}
    report: EngineReport = SequentialPruner(
        model,
        pruning_method,
        sparsity=target,
        structure=structure,
        calibration=calib,
        device=compute,
        batch_size=batch_size,
        sparsity_fn=sparsity_fn,
        progress=progress,
        input_cache=input_cache,
        pipeline=pipeline,
        offload=offload,
        loader=loader,
    ).run()
    model.train(was_training)
    return PruneResult(
        method=pruning_method.name,
        params=pruning_method.params(),
        target_sparsity=target,
        structure=str(structure),
        layers=report.layers,
        calibration=calib.spec if calib is not None else {"used": False},
        timings={"calibration_data_s": calib_s, **report.timings},
        peak_memory=peak_memory(compute),
        device=str(compute),
        seed=seed if calib is not None else None,
        sparsity_profile=profile_info,
        pipeline=pipeline,
    )


def _calibration_set(
    tokenizer: Any, calibration: CalibrationSet | str | None, source: Any, seqlen: int, seed: int
) -> CalibrationSet:
    if isinstance(calibration, CalibrationSet):
        return calibration
    if tokenizer is None:
        raise CalibrationSourceError("calibration text needs a tokenizer, and this model has none")
    mix = parse_mix(calibration) if calibration is not None else None
    text_source = source if hasattr(source, "documents") else open_source(
        source, langs=[entry.language for entry in mix or []]
    )
    return build_calibration(tokenizer, text_source, mix, seqlen=seqlen, seed=seed)


def save_pruned(
    model: nn.Module,
    tokenizer: Any,
    result: PruneResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_shard_size: str = "2GB",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the pruned model, its tokenizer and ``hfprune.json`` to ``out`` atomically.

    Weights are dense safetensors holding the zeros: sparse storage formats were removed upstream and
    loaders now mis-load them silently, so dense is the format every ``from_pretrained`` reads right.
    """
    with atomic_folder(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        write_json(tmp / METADATA_FILE, {**result.to_dict(), **(extra or {})})
    return Path(out)


def prune_pretrained(
    model_id: str,
    out: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    overwrite: bool = False,
    max_shard_size: str = "2GB",
    stream: bool = False,
    command: list[str] | None = None,
    **prune_kwargs: Any,
) -> PruneResult:
    """Load ``model_id`` (Hub id or folder), prune it and save it to ``out``: the ``hfprune prune`` job.

    The output is checked first so a long run never ends in "already exists". ``stream``: never hold the
    whole model; blocks are read and written one at a time (:mod:`hfprune.streaming`, one shard per block).
    """
    if stream:
        from .streaming import prune_streaming

        return prune_streaming(
            model_id, out, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype,
            overwrite=overwrite, command=command, **prune_kwargs,
        )
    check_output(out, overwrite)
    started = time.perf_counter()
    loaded = load_model(model_id, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype)
    load_s = time.perf_counter() - started
    result = prune(loaded.model, loaded.tokenizer, **prune_kwargs)
    result.base_model = loaded.source
    result.timings["load_s"] = load_s
    started = time.perf_counter()
    extra = {"command": command} if command else None
    save_pruned(loaded.model, loaded.tokenizer, result, out, overwrite=overwrite, max_shard_size=max_shard_size, extra=extra)
    result.timings["save_s"] = time.perf_counter() - started
    result.peak_memory = peak_memory(resolve_device(prune_kwargs.get("device")))
    return result

