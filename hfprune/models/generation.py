"""Greedy generation of exactly N new tokens at batch 1: how hfprune's speed meters and export checks call
``generate`` (any runtime with a transformers-style ``generate``: PyTorch, OpenVINO)."""

from __future__ import annotations

from typing import Any

import torch


def greedy(model: Any, ids: torch.Tensor, new_tokens: int, *, pad_token_id: int = 0) -> torch.Tensor:
    """``ids`` (``[1, P]``) continued by exactly ``new_tokens`` greedy tokens (no early stop at EOS)."""
    return model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
    )
