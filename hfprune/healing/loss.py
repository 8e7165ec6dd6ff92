"""The healing loss: distillation from the teacher plus the plain language-model loss, mixed by ``kd_weight``,
and optionally a hidden-state term.

``loss = kd_weight * T^2 * KL(teacher || student at temperature T) + (1 - kd_weight) * cross-entropy
+ hidden_weight * H``. The KL is averaged over tokens (not summed per sequence), so its size does not depend on
``seqlen``; the T^2 factor keeps its gradients comparable across temperatures (Hinton et al., 2015). ``H`` is the
mean squared difference of the last hidden states (the last entry of ``output_hidden_states``: what the output
layer reads) divided by the teacher's mean square, so it is scale-free and ``hidden_weight`` means the same on
every model.
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
    hidden: torch.Tensor


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over every token position."""
    vocab = student_logits.shape[-1]
    student = F.log_softmax(student_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the last hidden states, relative to the teacher's mean square."""
    teacher = teacher_hidden.float()
    return F.mse_loss(student_hidden.float(), teacher) / teacher.pow(2).mean().clamp_min(1e-12)


def healing_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    input_ids: torch.Tensor,
    *,
    temperature: float,
    kd_weight: float,
    hidden_weight: float = 0.0,
    student_hidden: torch.Tensor | None = None,
    teacher_hidden: torch.Tensor | None = None,
) -> LossParts:
    """The mixed loss over the positions that have a next token (logits ``[batch, seq, vocab]``; hidden states
    ``[batch, seq, width]``, needed only with ``hidden_weight``)."""
    student = student_logits[:, :-1]
    kd = kd_loss(student, teacher_logits[:, :-1], temperature)
    ce = F.cross_entropy(student.float().reshape(-1, student.shape[-1]), input_ids[:, 1:].reshape(-1))
    total = kd_weight * kd + (1 - kd_weight) * ce
    hidden = torch.zeros((), device=kd.device)
    if hidden_weight:
        if student_hidden is None or teacher_hidden is None:
            raise ValueError("hidden_weight needs both models' last hidden states")
        hidden = hidden_loss(student_hidden, teacher_hidden)
        total = total + hidden_weight * hidden
    return LossParts(total, kd.detach(), ce.detach(), hidden.detach())
