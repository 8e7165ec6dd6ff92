"""Bits per byte of a causal LM on a few held-out sentences: the quick per-language quality figure that compares
across tokenizers (a trimmed vocabulary, an export), used where a full ``hfprune eval`` would be too much."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def token_nll_sum(logits: torch.Tensor, ids: torch.Tensor) -> float:
    """Summed negative log-likelihood (nats) of ``ids[1:]`` under ``logits[:-1]`` (one sequence, ``[n, vocab]``)."""
    return torch.nn.functional.cross_entropy(logits[:-1].float(), ids[1:], reduction="sum").item()


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    return nll_nats / math.log(2) / n_bytes


@torch.no_grad()
def held_out_bits_per_byte(model: Any, tokenizer: Any, sentences: Sequence[str]) -> dict[str, Any]:
    """One forward per sentence in the model's own tokens; bits per byte over all their UTF-8 bytes."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll, n_bytes, tokens = 0.0, 0, 0
    try:
        for sentence in sentences:
            ids = torch.tensor(tokenizer(sentence)["input_ids"], device=device)
            if ids.numel() < 2:
                continue
            nll += token_nll_sum(model(input_ids=ids[None]).logits[0], ids)
            n_bytes += len(sentence.encode("utf-8"))
            tokens += ids.numel() - 1
    finally:
        model.train(was_training)
    return {
        "bits_per_byte": bits_per_byte(nll, n_bytes),
        "sentences": len(sentences),
        "bytes": n_bytes,
        "tokens": tokens,
    }
