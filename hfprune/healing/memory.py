"""Will it fit? Student weights, the gradients and AdamW state of what trains, and the teacher's weights, counted
per device before anything is moved there, so a run that cannot fit stops in a second with the numbers instead
of failing an hour in."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import TeacherDoesNotFitError

#: Bytes per trained parameter besides its weight: AdamW's two fp32 moments.
_ADAM_STATE_BYTES = 8


def estimate(
    student: nn.Module, teacher: nn.Module, *, device: torch.device, teacher_device: torch.device
) -> dict[str, Any]:
    """Bytes the run holds, activations aside: the student's weights, a gradient and two AdamW moments for every
    parameter that trains (all but the frozen embeddings in full mode, the adapters in LoRA mode) and the
    teacher's weights, with what lands on each device."""
    params = list(student.parameters())
    student_b = sum(p.numel() * p.element_size() for p in params)
    trained = [p for p in params if p.requires_grad]
    train_b = sum(p.numel() * (p.element_size() + _ADAM_STATE_BYTES) for p in trained)
    teacher_params = list(teacher.parameters())
    teacher_b = sum(p.numel() * p.element_size() for p in teacher_params)
    per_device: dict[str, float] = {str(device): (student_b + train_b) / 2**30}
    per_device[str(teacher_device)] = per_device.get(str(teacher_device), 0.0) + teacher_b / 2**30
    return {
        "student_parameters": sum(p.numel() for p in params),
        "trained_parameters": sum(p.numel() for p in trained),
        "teacher_parameters": sum(p.numel() for p in teacher_params),
        "student_weights_gib": student_b / 2**30,
        "gradients_and_adamw_gib": train_b / 2**30,
        "teacher_weights_gib": teacher_b / 2**30,
        "total_gib": (student_b + train_b + teacher_b) / 2**30,
        "per_device_gib": per_device,
        "activations": "not included (they grow with --batch-size x --seqlen)",
    }


def check_fits(needed: dict[str, Any], free_bytes: Any = None) -> dict[str, Any]:
    """Refuse when what lands on a GPU exceeds its free memory; CPU memory is only recorded (the OS pages).

    Args:
        free_bytes: ``device -> free bytes`` (default ``torch.cuda.mem_get_info``); tests pass their own.

    Raises:
        TeacherDoesNotFitError: a GPU lacks the memory (the message gives the numbers and what to try).
    """
    free_bytes = free_bytes or (lambda device: torch.cuda.mem_get_info(device)[0])
    free: dict[str, float] = {}
    for name, gib in needed["per_device_gib"].items():
        device = torch.device(name)
        if device.type != "cuda":
            continue
        free[name] = free_bytes(device) / 2**30
        if gib > free[name]:
            raise TeacherDoesNotFitError(_does_not_fit(needed, name, gib, free[name]))
    return {**needed, "device_free_gib": free or None}


def _does_not_fit(needed: dict[str, Any], device: str, gib: float, free: float) -> str:
    devices = needed["per_device_gib"]
    shared = len(devices) == 1
    parts = (
        f"student {needed['student_weights_gib']:.1f} + gradients and AdamW {needed['gradients_and_adamw_gib']:.1f}"
        + (f" + teacher {needed['teacher_weights_gib']:.1f}" if shared else "")
    )
    if not shared and devices and next(iter(devices)) != device:
        parts = f"teacher {needed['teacher_weights_gib']:.1f}"
    hints = ["--teacher-device cpu (the teacher runs there, only its logits move)"] if shared else []
    hints += ["--heal-mode lora", "a smaller teacher dtype (--dtype bfloat16)", "a GPU with more memory"]
    return (
        f"healing needs about {gib:.1f} GiB on {device} ({parts}) before activations, but {free:.1f} GiB are free: "
        f"use {', '.join(hints)}"
    )
