"""Finding the blocks and prunable linear layers of any architecture.

Discovery is structural, not a per-model list: a *stack* is an ``nn.ModuleList`` of same-class blocks that
hold linear layers (``nn.Linear`` or GPT-2's ``Conv1D``) and is not itself inside another stack's block.
That finds ``model.layers`` (Llama, Qwen2, Mistral, Gemma 3), ``transformer.h`` (GPT-2, Bloom) and both
``encoder.block`` and ``decoder.block`` of MT5 without naming any of them. Embeddings and ``lm_head`` live
outside the stacks, so they stay dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnsupportedArchitectureError

try:  # transformers' GPT-2 style linear with a transposed weight
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover - very old transformers
    Conv1D = ()  # type: ignore[assignment,misc]

LINEAR_TYPES: tuple[type, ...] = (nn.Linear, Conv1D) if Conv1D else (nn.Linear,)


@dataclass
class PrunableLayer:
    """A linear layer seen as ``W`` of shape ``[out_features, in_features]`` whatever its storage.

    ``Conv1D`` stores ``[in, out]``; methods always work on ``[out, in]`` (rows = outputs, columns = the
    input channels that activation statistics are about), and :meth:`set_weight` writes back in place.
    """

    name: str  # full name in the model, e.g. "model.layers.3.mlp.down_proj"
    short_name: str  # name inside its block, e.g. "mlp.down_proj"
    module: nn.Module

    @property
    def transposed(self) -> bool:
        return bool(Conv1D) and isinstance(self.module, Conv1D)

    @property
    def weight(self) -> torch.Tensor:
        w = self.module.weight.data
        return w.t() if self.transposed else w

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kind(self) -> str:
        """The module type for summaries: the last part of the name ("q_proj", "c_attn", "wo")."""
        return self.short_name.rsplit(".", 1)[-1]

    def set_weight(self, w: torch.Tensor) -> None:
        target = self.module.weight.data
        target.copy_((w.t() if self.transposed else w).to(target.dtype))


@dataclass
class BlockStack:
    """One stack of transformer blocks, in execution order."""

    name: str  # e.g. "model.layers", "encoder.block"
    blocks: nn.ModuleList

    def layers(self, index: int) -> list[PrunableLayer]:
        return prunable_layers(self.blocks[index], prefix=f"{self.name}.{index}")


def prunable_layers(block: nn.Module, prefix: str = "") -> list[PrunableLayer]:
    """All linear layers of a block, in definition order."""
    found = []
    for short, module in block.named_modules():
        if isinstance(module, LINEAR_TYPES) and getattr(module, "weight", None) is not None:
            full = f"{prefix}.{short}" if prefix else short
            found.append(PrunableLayer(full, short, module))
    return found


def find_block_stacks(model: nn.Module) -> list[BlockStack]:
    """The stacks of repeated blocks that hold linear layers, outermost only, in module order.

    Raises:
        UnsupportedArchitectureError: none found; the message lists the module types that were seen.
    """
    candidates = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        first_type = type(module[0])
        if not all(type(block) is first_type for block in module):
            continue
        if not all(prunable_layers(block) for block in module):
            continue
        candidates.append(name)
    outer = [
        name for name in candidates if not any(name.startswith(other + ".") for other in candidates if other != name)
    ]
    if not outer:
        seen = sorted({type(m).__name__ for m in model.modules()})
        raise UnsupportedArchitectureError(
            f"{type(model).__name__}: found no stack of repeated blocks with linear layers to prune "
            f"(module types seen: {', '.join(seen[:25])}{' ...' if len(seen) > 25 else ''})"
        )
    return [BlockStack(name, model.get_submodule(name)) for name in outer]


def all_prunable_layers(model: nn.Module) -> list[PrunableLayer]:
    return [layer for stack in find_block_stacks(model) for i in range(len(stack.blocks)) for layer in stack.layers(i)]


def position_limit(model: nn.Module) -> tuple[int | None, bool]:
    """``(positions, learned)``: how many positions the model was built for, and whether they are a learned
    table (a longer input indexes past it and crashes) rather than rotary (it runs, outside the trained range).
    ``(None, False)`` when the model states no limit (ALiBi, T5's relative bias)."""
    config = getattr(model, "config", None)
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None, False
    token_table = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    learned = any(
        isinstance(module, nn.Embedding) and module is not token_table and module.num_embeddings in (limit, limit + 2)
        for module in model.modules()
    )  # OPT's table has 2 extra rows
    rotary = any(hasattr(config, name) for name in ("rope_theta", "rope_parameters", "rope_scaling"))
    return (limit, True) if learned else ((limit, False) if rotary else (None, False))
