"""The healing loss: distillation from the teacher plus the plain language-model loss, mixed by ``kd_weight``.

``loss = kd_weight * T^2 * KL(teacher || student at temperature T) + (1 - kd_weight) * cross-entropy``. The KL
is averaged over tokens (not summed per sequence), so its size does not depend on ``seqlen``; the T^2 factor
keeps its gradients comparable across temperatures (Hinton et al., 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossParts:
    total: torch.Tensor
    kd: torch.Tensor
    ce: torch.Tensor


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over every token position."""
    vocab = student_logits.shape[-1]
    student = F.log_softmax(student_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def healing_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    input_ids: torch.Tensor,
    *,
    temperature: float,
    kd_weight: float,
) -> LossParts:
    """The mixed loss over the positions that have a next token (logits ``[batch, seq, vocab]``)."""
    student = student_logits[:, :-1]
    kd = kd_loss(student, teacher_logits[:, :-1], temperature)
    ce = F.cross_entropy(student.float().reshape(-1, student.shape[-1]), input_ids[:, 1:].reshape(-1))
    return LossParts(kd_weight * kd + (1 - kd_weight) * ce, kd.detach(), ce.detach())
