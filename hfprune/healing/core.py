"""Healing in memory: :func:`heal` a pruned student against its dense teacher (what ``heal_pretrained`` and the
CLI call once the models are loaded)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..calibration import open_source
from ..calibration.held_out import read_held_out
from ..errors import HealingSettingsError
from ..models import all_prunable_layers
from ..system import library_versions, peak_memory, resolve_device
from . import lora
from .alignment import align
from .data import healing_samples
from .masks import SparsityMasks
from .memory import check_fits, estimate
from .quality import measure, quality_record
from .result import HealResult
from .settings import HealSettings
from .training import Checkpointing, StepCallback, train


def heal(
    student: nn.Module,
    teacher: nn.Module,
    tokenizer: Any,
    settings: HealSettings | None = None,
    *,
    teacher_tokenizer: Any = None,
    vocab_map: dict[str, Any] | None = None,
    base_tokenizer_sha256: str | None = None,
    exclude_hashes: Iterable[str] = (),
    checkpointing: Checkpointing | None = None,
    on_step: StepCallback | None = None,
    progress: bool = False,
) -> HealResult:
    """Distil ``teacher`` into the pruned ``student`` on new text of ``settings``' languages, keeping its zeros.

    Args:
        tokenizer: the student's tokenizer (the healing text is cut with it).
        teacher_tokenizer: checked against ``tokenizer`` (or, for a trimmed student, against
            ``base_tokenizer_sha256``); ``None`` skips the check (the caller vouches for it).
        vocab_map: a vocabulary-trimmed student's ``vocab_map.json`` (its ``old_ids`` are the teacher's ids).
        exclude_hashes: the samples the mask was chosen on (``calibration.sample_hashes``): never healed on.
        checkpointing, on_step: resumable checkpoints, and a callback after each optimizer step.

    Raises:
        HealingSettingsError, TeacherTokenizerMismatchError, CalibrationError, TeacherDoesNotFitError,
        HealCheckpointError, HealingInterruptedError, MaskNotKeptError: see :mod:`hfprune.errors`.
    """
    settings = settings or HealSettings()
    device = resolve_device(settings.device)
    teacher_device = (
        resolve_device(settings.teacher_device, flag="--teacher-device")
        if settings.teacher_device is not None
        else device
    )
    alignment = align(
        tokenizer,
        teacher_tokenizer,
        student_rows=student.get_output_embeddings().weight.shape[0],
        teacher_rows=teacher.get_output_embeddings().weight.shape[0],
        vocab_map=vocab_map,
        base_tokenizer_sha256=base_tokenizer_sha256,
    )
    _check_hidden_widths(student, teacher, settings)
    masks = SparsityMasks.capture(student)
    zeros_before = _prunable_zeros(student)
    mix = settings.mix
    source = open_source(settings.calib_source, langs=mix.languages)
    data = healing_samples(
        tokenizer,
        source,
        mix,
        total=settings.samples,
        seqlen=settings.seqlen,
        seed=settings.seed,
        exclude=exclude_hashes,
    ).repeated(settings.epochs, settings.seed)
    held = read_held_out(mix.languages, settings.quality_sentences) if settings.quality_sentences else None
    quality_text, quality_files = (held.sentences, held.files) if held else ({}, {})
    before = {
        "dense": measure(teacher, teacher_tokenizer or tokenizer, quality_text),
        "pruned": measure(student, tokenizer, quality_text),
    }
    dtype = next(student.parameters()).dtype
    if settings.mode == "full" and dtype != torch.float32:
        student = student.float()  # AdamW on bf16 weights loses small updates; saved in the original dtype
    frozen = 0 if settings.train_embeddings else _freeze_embeddings(student)
    lora_params = 0
    if settings.mode == "lora":
        student, lora_params = lora.add_adapters(student, settings)
    memory = check_fits(estimate(student, teacher, device=device, teacher_device=teacher_device))
    started = time.time()
    student, stats = train(
        student,
        teacher,
        data,
        alignment,
        masks,
        settings,
        device,
        teacher_device=teacher_device,
        checkpointing=checkpointing,
        on_step=on_step,
        progress=progress,
    )
    lora_done, adapter_kept = None, None
    if settings.mode == "lora":
        if masks and quality_text:  # what re-masking the merge costs: the adapter kept beside the zeros, measured
            adapter_kept = measure(student, tokenizer, quality_text)
        student = lora.merge(student)
        masks.rebind(student)
        masks.apply()
        lora_done = "merged, then re-masked" if masks else "merged"
    masks.verify()
    student.requires_grad_(True)  # the frozen embeddings train again if the caller goes on training
    student = student.to(device="cpu", dtype=dtype)
    zeros_after = _prunable_zeros(student)
    quality = None
    if quality_text:
        missing = [lang for lang in mix.languages if lang not in quality_text]
        healed = measure(student, tokenizer, quality_text)
        quality = quality_record(
            before["dense"], before["pruned"], healed, quality_files, missing, adapter_kept=adapter_kept
        )
    record = {
        "mode": settings.mode,
        **({"lora": lora_done, "lora_settings": settings.describe()["lora"]} if lora_done else {}),
        "settings": settings.describe(),
        "languages": mix.languages,
        "data": data.record,
        "alignment": alignment.describe(),
        "tokens_seen": stats.tokens_seen,
        "epochs": settings.epochs,
        "steps": stats.steps,
        "total_steps": stats.total_steps,
        "seqlen": settings.seqlen,
        "lr": settings.learning_rate,
        "temperature": settings.temperature,
        "kd_weight": settings.kd_weight,
        "hidden_weight": settings.hidden_weight,
        "seeds": {"training": settings.seed, "data_draw": settings.seed + 1, "data_order": settings.seed},
        "started": started,
        "time_s": stats.elapsed_s,
        "tokens_per_s": stats.tokens_per_s,
        "device": str(device),
        "teacher_device": str(teacher_device),
        "embeddings": "frozen" if frozen else "trained",
        "frozen_parameters": frozen,
        "processes": stats.processes,
        "mixed_precision": stats.mixed_precision,
        "resumed_from_step": stats.resumed_from_step,
        "loss_start": stats.loss_start,
        "loss_end": stats.loss_end,
        "masked_weights": masks.zeros,
        "zeros_before": zeros_before,
        "zeros_after": zeros_after,
        # both counted the same way, on the weights themselves: a structured student's pruning record says 0 even
        # where its checkpoint already held exact zeros (Gemma's GGUF-derived weights: 4.2%), which healing keeps
        "achieved_sparsity_before": zeros_before["sparsity"],
        "achieved_sparsity": zeros_after["sparsity"],
        "quality": quality,
        "memory_estimate": memory,
        "peak_memory": peak_memory(device),
        "versions": library_versions(),
    }
    return HealResult(student, record)


def _check_hidden_widths(student: nn.Module, teacher: nn.Module, settings: HealSettings) -> None:
    """``--hidden-weight`` compares hidden states element by element: both models must have the same width."""
    if not settings.hidden_weight:
        return
    widths = [getattr(getattr(m, "config", None), "hidden_size", None) for m in (student, teacher)]
    if None not in widths and widths[0] != widths[1]:
        raise HealingSettingsError(
            f"--hidden-weight compares last hidden states, but the student's are {widths[0]} wide and the "
            f"teacher's {widths[1]}; heal without --hidden-weight (the KD and language-model terms need no match)"
        )


def _freeze_embeddings(model: nn.Module) -> int:
    """Freeze the input embedding and the output head (one tensor when tied); the parameters frozen."""
    frozen: dict[int, int] = {}
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        for param in module.parameters() if module is not None else ():
            param.requires_grad_(False)
            frozen[id(param)] = param.numel()
    return sum(frozen.values())


def _prunable_zeros(model: nn.Module) -> dict[str, Any]:
    """Zeros over all prunable layers' weights (what ``achieved_sparsity`` of a pruning record counts)."""
    layers = all_prunable_layers(model)
    zeros = sum(int((layer.module.weight == 0).sum()) for layer in layers)
    total = sum(layer.module.weight.numel() for layer in layers)
    return {"zeros": zeros, "weights": total, "sparsity": zeros / total if total else 0.0}
