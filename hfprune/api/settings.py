"""Typed settings of a pruning run and what it did: PruneSettings in, PruneResult out."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..calibration import CalibrationSet, CalibrationSource, Mix
from ..constants import DEFAULT_BATCH_SIZE, DEFAULT_LANG_AGG, DEFAULT_METHOD, DEFAULT_SEED, DEFAULT_SEQLEN, VERSION
from ..healing import HealSettings
from ..pruning.engine import LayerReport
from ..pruning.profiles import SparsityProfile
from ..pruning.sparsity_pattern import Structure
from ..pruning.structured import StructuredSpec, is_structured
from ..system import library_versions, resolve_device
from ..vocab import VocabSettings, VocabTrimResult


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
        heal: heal the pruned model by distillation from the dense one before it is saved
            (:func:`prune_pretrained` only; :mod:`hfprune.healing`, the base model as teacher).
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
    heal: HealSettings | None = None

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
            **({"heal": self.heal.describe()} if self.heal is not None else {}),
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
    #: healing after pruning (``settings.heal``): the ``healing`` record of ``hfprune.json``
    healing: dict[str, Any] | None = None
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
        return (
            {
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
            }
            | ({"structured": self.structured} if self.structured is not None else {})
            | ({"healing": self.healing} if self.healing is not None else {})
        )


def resolved(settings: PruneSettings) -> PruneSettings:
    """``settings`` with ``device`` resolved to this rank's compute device (a ``torch.device``), once per call:
    every path below reads ``settings.device`` as it is.

    Raises:
        InvalidDeviceError: a device this machine does not have.
    """
    return dataclasses.replace(settings, device=distributed.rank_device(resolve_device(settings.device)))


def _is_structured(structure: Any) -> bool:
    return isinstance(structure, StructuredSpec) or (isinstance(structure, str) and is_structured(structure))


def _describe_source(source: CalibrationSource) -> Any:
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    if dataclasses.is_dataclass(source):
        return asdict(source)  # type: ignore[arg-type]
    return source.describe()
