"""Calibration-language sweeps: methods x sparsities x calibration mixes, each cell evaluated per language.

This is Kurz et al.'s experiment as one call. Everything that does not depend on the cell is done once:
the model is loaded once and its dense prunable weights restored between cells; each mix is tokenised
once; the first block's captured inputs are reused by every cell of a mix (they depend only on the
embeddings); a layerwise profile measures the dense model once per mix; the dense model is evaluated once.

Under a launcher (``torchrun``, ``accelerate launch``) the dense model is evaluated by all ranks together, then
the ranks split into as many groups as there are cells (at most one per rank; :func:`hfprune.distributed.split`),
each group prunes and evaluates its own cells data-parallel, and every cell comes back to rank 0, which writes
the one ``sweep.json`` in grid order. A cell's numbers are those of a single-process run: a group computes
exactly what one process computes (see ``pruning.engine`` and ``evaluation.sharding``).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from .. import distributed
from ..api import PruneSettings, calibration_set, prune
from ..calibration import CalibrationSet, CalibrationSource, Mix
from ..constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_EVAL_BATCH_SIZE,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
)
from ..errors import SweepSpecError
from ..healing import HealSettings, heal
from ..pruning.engine import PIPELINES
from ..pruning.methods import get_method
from ..pruning.profiles import (
    BlockImportance,
    SparsityProfile,
    make_profile,
    resolve_profile,
)
from ..pruning.sparsity_pattern import Structure, check_sparsity
from ..pruning.structured import StructuredSpec, check_lang_agg, parse_structure
from ..system import resolve_device
from .dense_weights import DenseWeights
from .flores_eval import flores_perplexities, flores_text


@dataclass
class SweepSpec:
    methods: list[str]
    sparsities: list[float]
    mixes: list[str]
    eval_langs: list[str]
    structure: str = "unstructured"
    profile: str = "uniform"
    profile_delta: float | None = None
    owl_m: float | None = None
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its options
    seqlen: int = DEFAULT_SEQLEN
    seed: int = DEFAULT_SEED
    eval_sentences: int | None = None
    context_length: int = DEFAULT_CONTEXT_LENGTH
    batch_size: int = DEFAULT_BATCH_SIZE  # calibration samples per forward
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE  # perplexity windows per forward
    device: str | None = None  # None / "auto": CUDA when there is one
    pipeline: str = "sequential"
    offload: bool = False
    #: structured removal only (``structure="width:0.2"``, ...): language aggregation and the least-squares refit
    lang_agg: str | None = None
    refit: bool = True
    #: ``--heal``: every cell is also healed from the dense model (a copy of the pruned cell; a second row
    #: ``METHOD+heal``); without ``heal_calib`` the text follows each cell's mix, equal weights
    heal: HealSettings | None = None
    heal_calib: str | None = None

    def check(self) -> None:
        """Fail before any minute is spent: unknown methods, bad sparsities or mixes, nothing to evaluate."""
        if not self.methods or not self.mixes or not self.eval_langs:
            raise SweepSpecError(
                "a sweep needs at least one --methods entry, one --calib mix and one --eval-langs language"
            )
        for name in self.methods:
            get_method(name, **self.method_params.get(name, {}))
        for sparsity in self.sparsities:
            check_sparsity(sparsity)
        parsed = [str(Mix.parse(mix)) for mix in self.mixes]
        if len(set(parsed)) != len(parsed):
            raise SweepSpecError("the same --calib mix is given twice; give each mix once")
        structure = parse_structure(self.structure)
        if isinstance(structure, StructuredSpec):
            for name in self.methods:
                structure.check_settings(
                    sparsity=None, method=name, method_params=self.method_params.get(name, {}), profile=self.profile
                )
            check_lang_agg(self.lang_agg or "pooled")
        elif self.lang_agg is not None or not self.refit:
            raise SweepSpecError(
                "--lang-agg and --no-refit apply to structured pruning (--structure width:F, heads:K or depth:K), "
                f"not to {structure} sparsity; leave them out"
            )
        make_profile(self.profile, delta=self.profile_delta, owl_m=self.owl_m)
        if self.pipeline not in PIPELINES:
            raise SweepSpecError(f"unknown --pipeline '{self.pipeline}'; choose one of {', '.join(PIPELINES)}")

    def settings(self, method: str, sparsity: float, calibration: CalibrationSet) -> PruneSettings:
        """One cell's pruning settings."""
        structure = parse_structure(self.structure)
        common = dict(
            method=method,
            method_params=self.method_params.get(method, {}),
            structure=structure,
            calibration=calibration,
            seqlen=self.seqlen,
            seed=self.seed,
            device=self.device,
            batch_size=self.batch_size,
            pipeline=self.pipeline,
            offload=self.offload,
        )
        if isinstance(structure, StructuredSpec):  # widths and depths, not a sparsity, say how much goes
            return PruneSettings(**common, lang_agg=self.lang_agg, refit=self.refit)
        return PruneSettings(**common, sparsity=None if structure.is_nm else sparsity)


@dataclass
class SweepCell:
    method: str
    sparsity: float
    calib: str
    achieved_sparsity: float
    profile: dict[str, Any]
    prune_s: float
    eval_s: float
    eval: dict[str, dict[str, float]]
    #: structured removal: spec, aggregation, refit and parameter counts (``None`` for zero-making pruning)
    structured: dict[str, Any] | None = None
    #: the world ranks that pruned and evaluated this cell (``[0]`` in a single process)
    ranks: list[int] = field(default_factory=lambda: [0])
    #: a ``METHOD+heal`` row: what healing did (tokens, steps, time, losses, zeros kept)
    healing: dict[str, Any] | None = None


@dataclass
class SweepResult:
    spec: SweepSpec
    dense: dict[str, dict[str, float]]
    cells: list[SweepCell] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: with ``--trim-vocab``: the trimming record, and the *untrimmed* dense model's evaluation
    #: (``dense`` and every cell are then the trimmed model's)
    vocab: dict[str, Any] = field(default_factory=dict)
    #: the processes that ran the sweep: launcher, world size and how many groups shared the cells
    distributed: dict[str, Any] = field(default_factory=lambda: {"launcher": "none", "world_size": 1, "groups": 1})

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": {**asdict(self.spec), "heal": self.spec.heal.describe() if self.spec.heal else None},
            "dense": self.dense,
            "cells": [asdict(c) for c in self.cells],
            "timings": self.timings,
            **({"vocab": self.vocab} if self.vocab else {}),
            "distributed": self.distributed,
        }


def run_sweep(
    model: nn.Module,
    tokenizer: Any,
    spec: SweepSpec,
    *,
    calib_source: CalibrationSource = None,
    on_cell: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Run every cell of ``spec`` on ``model`` (restored to dense between cells); ``on_cell`` sees progress.

    Under a launcher each rank holds its own copy of ``model``; rank 0's ``on_cell`` sees the cells its group
    finished, and every rank returns the whole grid.
    """
    spec.check()
    world = distributed.current()
    started = time.perf_counter()
    texts = {lang: flores_text(lang, spec.eval_sentences) for lang in spec.eval_langs}
    evaluate = lambda target=model: flores_perplexities(  # noqa: E731
        target,
        tokenizer,
        spec.eval_langs,
        context_length=spec.context_length,
        batch_size=spec.eval_batch_size,
        texts=texts,
    )
    dense_weights = DenseWeights(model)
    teacher = copy.deepcopy(model) if spec.heal is not None else None  # the dense model, whatever the cells do
    result = SweepResult(spec, evaluate())
    result.timings["dense_eval_s"] = time.perf_counter() - started
    grid = [(mix, name, sparsity) for mix in spec.mixes for name in spec.methods for sparsity in spec.sparsities]
    parts = max(1, min(len(grid), world.size))
    part, group = distributed.split(world, parts)
    reuses: dict[str, _MixReuse] = {}
    done: dict[int, SweepCell] = {}
    with distributed.within(group):
        for index in range(part, len(grid), parts):
            mix, name, sparsity = grid[index]
            if mix not in reuses:  # each mix tokenised once, when this group first needs it
                mix_settings = PruneSettings(
                    calibration=Mix.parse(mix), calib_source=calib_source, seqlen=spec.seqlen, seed=spec.seed
                )
                reuses[mix] = _MixReuse(calibration_set(tokenizer, mix_settings))
            dense_weights.restore()
            cell, pruned_model = _run_cell(model, tokenizer, spec, name, sparsity, mix, reuses[mix], evaluate)
            cells = [cell]
            if teacher is not None:
                cells.append(_heal_cell(cell, pruned_model, teacher, tokenizer, spec, reuses[mix], evaluate))
            for each in cells:
                each.ranks = list(group.ranks)
            done[index] = cells
            if on_cell and world.is_main:
                result.cells = [cell for i in sorted(done) for cell in done[i]]
                on_cell(result)
    dense_weights.restore()
    for gathered in world.all_gather_object(done, "gathering the sweep's cells"):
        done.update(gathered)
    result.cells = [cell for i in range(len(grid)) for cell in done[i]]
    result.distributed = {**distributed.describe(world), "groups": parts}
    result.timings["total_s"] = time.perf_counter() - started
    return result


@dataclass
class _MixReuse:
    """What every cell of one calibration mix shares."""

    calibration: CalibrationSet
    input_cache: dict[str, Any] = field(default_factory=dict)
    measured: dict[tuple, BlockImportance] = field(default_factory=dict)

    def importance(self, profile: SparsityProfile, model: nn.Module, spec: SweepSpec) -> BlockImportance:
        key = (profile.name, getattr(profile, "m", None))  # delta only rescales: one measurement serves all
        if key not in self.measured:
            self.measured[key] = profile.measure(
                model,
                self.calibration,
                device=distributed.rank_device(resolve_device(spec.device)),
                batch_size=spec.batch_size,
                input_cache=self.input_cache,
            )
        return self.measured[key]


def _run_cell(
    model: nn.Module,
    tokenizer: Any,
    spec: SweepSpec,
    name: str,
    sparsity: float,
    mix: str,
    reuse: _MixReuse,
    evaluate: Callable[..., dict[str, dict[str, float]]],
) -> tuple[SweepCell, nn.Module]:
    """One cell, and the model it pruned (the shared model itself, or a structured copy)."""
    if isinstance(parse_structure(spec.structure), StructuredSpec):
        return _run_structured_cell(model, tokenizer, spec, name, mix, reuse, evaluate)
    params = spec.method_params.get(name, {})
    structure = Structure.parse(spec.structure)
    user_profile = make_profile(spec.profile, delta=spec.profile_delta, owl_m=spec.owl_m)
    profile = resolve_profile(user_profile, get_method(name, **params), structure)
    allocation = profile.allocate(reuse.importance(profile, model, spec), sparsity) if profile else None
    started = time.perf_counter()
    settings = spec.settings(name, sparsity, reuse.calibration)
    pruned = prune(model, tokenizer, settings, sparsity_fn=allocation, input_cache=reuse.input_cache)
    prune_s = time.perf_counter() - started
    evaluation = evaluate()
    cell = SweepCell(
        method=name,
        sparsity=pruned.target_sparsity,
        calib=mix,
        achieved_sparsity=pruned.sparsity,
        profile=allocation.to_dict() if allocation else {"profile": "uniform"},
        prune_s=prune_s,
        eval_s=time.perf_counter() - started - prune_s,
        eval=evaluation,
    )
    return cell, model


def _run_structured_cell(
    model: nn.Module,
    tokenizer: Any,
    spec: SweepSpec,
    name: str,
    mix: str,
    reuse: _MixReuse,
    evaluate: Callable[..., dict[str, dict[str, float]]],
) -> tuple[SweepCell, nn.Module]:
    """Structured removal changes shapes and drops blocks, which restoring dense weights cannot undo: the cell
    prunes a copy of the dense model and evaluates the copy."""
    started = time.perf_counter()
    smaller = copy.deepcopy(model)
    pruned = prune(smaller, tokenizer, spec.settings(name, 0.0, reuse.calibration), input_cache=reuse.input_cache)
    prune_s = time.perf_counter() - started
    evaluation = evaluate(smaller)
    record = pruned.structured or {}
    summary = {key: record.get(key) for key in ("spec", "lang_agg", "refit", "params_before", "params_after")}
    cell = SweepCell(
        method=f"{name}[{record.get('spec')},{record.get('lang_agg')}{'' if spec.refit else ',no-refit'}]",
        sparsity=0.0,
        calib=mix,
        achieved_sparsity=0.0,
        profile={"profile": "uniform"},
        prune_s=prune_s,
        eval_s=time.perf_counter() - started - prune_s,
        eval=evaluation,
        structured=summary,
    )
    return cell, smaller


def _heal_cell(
    cell: SweepCell,
    pruned: nn.Module,
    teacher: nn.Module,
    tokenizer: Any,
    spec: SweepSpec,
    reuse: _MixReuse,
    evaluate: Callable[..., dict[str, dict[str, float]]],
) -> SweepCell:
    """The cell healed: a copy of the pruned model distilled from the dense one on text that is not the mask's,
    evaluated like every cell (the shared model stays as pruned, so restoring it for the next cell still works)."""
    assert spec.heal is not None
    settings = spec.heal.with_overrides(quality_sentences=0)  # the sweep's own evaluation measures it
    if spec.heal_calib is None:
        settings = settings.with_overrides(calibration=Mix.parse(cell.calib).with_equal_weights())
    started = time.perf_counter()
    healed = heal(
        copy.deepcopy(pruned),
        teacher,
        tokenizer,
        settings,
        teacher_tokenizer=tokenizer,
        exclude_hashes=reuse.calibration.sample_hashes,
    )
    heal_s = time.perf_counter() - started
    evaluation = evaluate(healed.model)
    record = healed.record
    return dataclasses.replace(
        cell,
        method=f"{cell.method}+heal",
        achieved_sparsity=record["achieved_sparsity"] if cell.structured is None else cell.achieved_sparsity,
        prune_s=cell.prune_s + heal_s,
        eval_s=time.perf_counter() - started - heal_s,
        eval=evaluation,
        healing={
            "languages": record["languages"],
            "tokens_seen": record["tokens_seen"],
            "steps": record["steps"],
            "heal_s": heal_s,
            "mode": record["mode"],
            "lr": record["lr"],
            "loss_start": record["loss_start"],
            "loss_end": record["loss_end"],
        },
    )
