"""Content hashes of a model and its tokenizer: the cache key, and what results record.

Hashing the weights rather than trusting a path or name means a model pruned in place, or a folder
overwritten with new weights, never reuses a stale cached score.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..fingerprints import tokenizer_sha256
from ..models.placement import state_tensors, weights

__all__ = ["model_sha256", "parameter_count", "tokenizer_sha256"]


def model_sha256(model: Any) -> str:
    """sha256 over every parameter and buffer: names, dtypes, shapes and bytes (offloaded ones read from disk:
    a model placed with a device map hashes as it does in memory)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state_tensors(model), key=lambda item: item[0]):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def parameter_count(model: Any) -> int:
    """Parameters, a tied head counted once (also when a device map offloads it)."""
    return sum(parameter.numel() for _, parameter in weights(model))


def linear_sparsity(model: Any) -> float:
    """Share of exact zeros among the weights of 2-D parameters (the matrices pruning acts on)."""
    zeros = total = 0
    for _, parameter in weights(model):
        if parameter.dim() == 2:
            zeros += int((parameter == 0).sum())
            total += parameter.numel()
    return zeros / total if total else 0.0
