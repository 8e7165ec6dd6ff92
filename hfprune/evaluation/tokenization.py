"""How a model's tokenizer frames text: its BOS convention and a token id to pad with.

Both decide whether scores match the model's training distribution: a model trained with BOS at the
start of every sequence (Gemma) scores text without it about twice as badly, so we keep BOS wherever
the tokenizer would add it. Padding never reaches the model's predictions (it is masked and sits to
the right of real tokens), so a tokenizer without a pad token is fine: we borrow any valid id.
"""

from __future__ import annotations

from typing import Any


def bos_prefix(tokenizer: Any) -> list[int]:
    """``[bos_token_id]`` if encoding with special tokens puts BOS first, else ``[]``.

    We probe instead of reading ``add_bos_token`` because some tokenizers (Gemma 3) prepend BOS while
    that flag reads False.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return [bos] if probe and probe[0] == bos else []


def pad_id(tokenizer: Any) -> int:
    """An id to fill padded positions with: pad, else EOS, else 0 (positions are masked anyway)."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return 0


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (callers add BOS where the convention says).

    ``verbose=False`` silences the "longer than the maximum sequence length" warning: documents are
    long by design and are cut into windows afterwards.
    """
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
