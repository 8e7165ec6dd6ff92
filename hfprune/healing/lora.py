"""``--heal-mode lora``: low-rank adapters on the prunable linear layers (peft), merged into the weights at the
end. A merge adds ``B @ A`` to every weight, zeros included, so a sparse student is masked again after it."""

from __future__ import annotations

from torch import nn

from ..models import all_prunable_layers
from .settings import HealSettings


def add_adapters(model: nn.Module, settings: HealSettings) -> tuple[nn.Module, int]:
    """``model`` with LoRA adapters on its prunable layers (the base weights frozen) and the adapters' size."""
    from peft import LoraConfig, get_peft_model

    targets = sorted({layer.name for layer in all_prunable_layers(model)})
    config = LoraConfig(
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=targets,
        bias="none",
    )
    wrapped = get_peft_model(model, config)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    return wrapped, trainable


def merge(model: nn.Module) -> nn.Module:
    """The adapters added into the base weights and removed: a plain transformers model again."""
    return model.merge_and_unload()
