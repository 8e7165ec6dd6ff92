"""Padding token rows into a batch, and finding where a model runs."""

from __future__ import annotations

from typing import Any

import torch


def right_pad(rows: list[list[int]], pad: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack rows of different lengths, padded on the right; the mask marks real tokens.

    Right padding keeps every real token at its true position (no position-id bookkeeping, which not
    every architecture accepts), and under a causal mask real tokens never attend to the padding.
    """
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return input_ids.to(device), attention_mask.to(device)


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless stub)."""
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")
