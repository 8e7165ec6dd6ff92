"""Removing neurons, key/value groups and blocks from a loaded model, and rewriting its config to match.

Every change leaves an ordinary dense model: linear layers (``nn.Linear`` or GPT-2's ``Conv1D``) get smaller
weight tensors, blocks leave their ``ModuleList``, and the config fields that size the model (``intermediate_size``
/ ``n_inner``, ``num_attention_heads`` / ``num_key_value_heads`` with an explicit ``head_dim``,
``num_hidden_layers`` and per-block lists such as ``layer_types``) are set to what is left, so ``save_pretrained``
writes a checkpoint that plain ``AutoModelForCausalLM.from_pretrained`` rebuilds. Removing nothing changes nothing
(bit for bit; tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...models import BlockStack, PrunableLayer
from .architecture import Attention

#: config fields that hold one entry per block and follow the blocks when some are removed
PER_BLOCK_CONFIG = ("layer_types",)


def keep_outputs(layer: PrunableLayer, keep: torch.Tensor) -> None:
    """Keep only the output features ``keep`` (rows of the ``[out, in]`` view) and their bias entries."""
    module = layer.module
    keep = keep.to(module.weight.device)
    if layer.transposed:  # Conv1D stores [in, out]
        _set(module, "weight", module.weight.data[:, keep])
        module.nf = len(keep)
    else:
        _set(module, "weight", module.weight.data[keep])
        module.out_features = len(keep)
    if getattr(module, "bias", None) is not None:
        _set(module, "bias", module.bias.data[keep])


def keep_inputs(layer: PrunableLayer, keep: torch.Tensor, weight: torch.Tensor | None = None) -> None:
    """Keep only the input features ``keep`` (columns of the ``[out, in]`` view); ``weight``: their new values
    (``[out, len(keep)]``, e.g. a least-squares refit), else the old columns."""
    module = layer.module
    keep = keep.to(module.weight.device)
    kept = (
        layer.weight[:, keep] if weight is None else weight.to(device=module.weight.device, dtype=module.weight.dtype)
    )
    if layer.transposed:
        _set(module, "weight", kept.t())
        module.nx = len(keep)
    else:
        _set(module, "weight", kept)
        module.in_features = len(keep)


def keep_neurons(
    layers: dict[str, PrunableLayer],
    mlp_in: Sequence[str],
    mlp_out: str,
    keep: torch.Tensor,
    out_weight: torch.Tensor | None = None,
) -> None:
    """Keep the MLP neurons ``keep``: rows of the input projections, columns of the output projection."""
    for name in mlp_in:
        keep_outputs(layers[name], keep)
    keep_inputs(layers[mlp_out], keep, out_weight)


def head_channels(groups: Sequence[int], heads_per_group: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel indices of the key/value ``groups`` kept: ``(query channels, key/value channels)``.

    Query head ``h`` reads key/value head ``h // heads_per_group`` (transformers' ``repeat_kv``).
    """
    span = torch.arange(head_dim)
    kv = torch.cat([g * head_dim + span for g in groups]) if groups else torch.empty(0, dtype=torch.long)
    query_heads = [g * heads_per_group + i for g in groups for i in range(heads_per_group)]
    query = torch.cat([h * head_dim + span for h in query_heads]) if query_heads else torch.empty(0, dtype=torch.long)
    return query, kv


def keep_head_groups(
    layers: dict[str, PrunableLayer],
    attention: Attention,
    query: torch.Tensor,
    kv: torch.Tensor,
    o_weight: torch.Tensor | None = None,
) -> None:
    """Keep the query channels ``query`` (q rows, o columns) and key/value channels ``kv`` (k and v rows)."""
    keep_outputs(layers[attention.q], query)
    keep_outputs(layers[attention.k], kv)
    keep_outputs(layers[attention.v], kv)
    keep_inputs(layers[attention.o], query, o_weight)


def remove_blocks(stack: BlockStack, config: Any, drop: Sequence[int]) -> None:
    """Take the blocks ``drop`` out of the stack; re-index the rest and the config's per-block fields.

    Attention modules carry their block's index (``layer_idx``) to find their slot in the key/value cache, so the
    kept blocks are numbered again from 0, as a model built from the new config numbers them.
    """
    before = len(stack.blocks)
    kept = [i for i in range(before) if i not in set(drop)]
    for index in sorted(set(drop), reverse=True):
        del stack.blocks[index]
    for new_index, block in enumerate(stack.blocks):
        for module in block.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_index
    for key in PER_BLOCK_CONFIG:
        values = getattr(config, key, None)
        if isinstance(values, list) and len(values) == before:
            setattr(config, key, [values[i] for i in kept])
    config.num_hidden_layers = len(kept)


def set_width(config: Any, key: str, width: int) -> None:
    setattr(config, key, int(width))


def set_heads(config: Any, heads: int, kv_heads: int, head_dim: int) -> None:
    """Heads after removal; ``head_dim`` is written out because ``hidden_size / heads`` no longer gives it."""
    config.num_attention_heads = int(heads)
    config.num_key_value_heads = int(kv_heads)
    config.head_dim = int(head_dim)


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value.contiguous().clone(), requires_grad=old.requires_grad))
