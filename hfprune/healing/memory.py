"""Will it fit? Student weights, gradients and AdamW state plus the teacher's weights, counted before loading
onto the device, so a run that cannot fit stops in a second with the number instead of failing an hour in."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import TeacherDoesNotFitError

#: Bytes per trained parameter besides its weight: its gradient (same dtype) and AdamW's two fp32 moments.
_ADAM_STATE_BYTES = 8


def _bytes(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


def estimate(student: nn.Module, teacher: nn.Module, *, mode: str, lora_params: int = 0) -> dict[str, Any]:
    """Bytes the run holds on the device, activations aside: student weights, the gradients and AdamW moments
    of what trains (every weight for ``full``, ``lora_params`` adapters for ``lora``), and the teacher."""
    student_n, student_b = _bytes(student)
    teacher_n, teacher_b = _bytes(teacher)
    per = student_b / max(student_n, 1)
    trained = student_n if mode == "full" else lora_params
    train_b = int(trained * (per + _ADAM_STATE_BYTES) + (lora_params * per if mode == "lora" else 0))
    total = student_b + train_b + teacher_b
    return {
        "student_parameters": student_n,
        "trained_parameters": trained,
        "teacher_parameters": teacher_n,
        "student_weights_gib": student_b / 2**30,
        "gradients_and_adamw_gib": train_b / 2**30,
        "teacher_weights_gib": teacher_b / 2**30,
        "total_gib": total / 2**30,
        "activations": "not included (they grow with --batch-size x --seqlen)",
    }


def check_fits(needed: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """On CUDA, refuse when the estimate exceeds the free memory; elsewhere only record it.

    Raises:
        TeacherDoesNotFitError: the GPU lacks the memory (the message gives both numbers and what to try).
    """
    if device.type != "cuda":
        return {**needed, "device_free_gib": None}
    free, _total = torch.cuda.mem_get_info(device)
    if needed["total_gib"] > free / 2**30:
        raise TeacherDoesNotFitError(
            f"healing needs about {needed['total_gib']:.1f} GiB on {device} (student {needed['student_weights_gib']:.1f}"
            f" + gradients and AdamW {needed['gradients_and_adamw_gib']:.1f} + teacher "
            f"{needed['teacher_weights_gib']:.1f}) before activations, but {free / 2**30:.1f} GiB are free: use "
            "--heal-mode lora, a smaller teacher dtype (--dtype bfloat16), or a GPU with more memory"
        )
    return {**needed, "device_free_gib": free / 2**30}
