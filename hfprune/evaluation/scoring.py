"""Log-likelihood of continuations given contexts: batched, padded, longest first.

Tokenization follows lm-evaluation-harness so scores match its numbers: trailing spaces of the context
move to the continuation, the continuation's tokens are those of ``context + continuation`` beyond the
context's tokens, and an empty context is replaced by a single BOS (or EOS) token. Where the tokenizer
adds BOS, every context starts with it (the model's own convention). Requests are sorted longest first
so each batch pads little and the first batch shows at once whether memory suffices. Under a launcher the
batches are shared by the ranks (:mod:`~hfprune.evaluation.sharding`), with identical scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .batching import model_device, right_pad
from .limits import max_context_length
from .next_token import choose_scoring_path, span_logprob_sums
from .sharding import run_batches
from .tokenization import bos_prefix, encode, pad_id


@dataclass(frozen=True)
class EncodedRequest:
    """Token ids of one (context, continuation) pair; the continuation is the last ``n_continuation``."""

    tokens: list[int]
    n_continuation: int


def encode_request(
    tokenizer: Any, context: str, continuation: str, prefix: list[int], max_length: int | None
) -> EncodedRequest:
    """Tokens of ``prefix + context + continuation``, cut from the left to ``max_length`` if needed."""
    stripped = context.rstrip()
    if stripped != context:
        continuation = context[len(stripped) :] + continuation
        context = stripped
    if context:
        whole = encode(tokenizer, context + continuation)
        n_context = len(encode(tokenizer, context))
        context_tokens, continuation_tokens = prefix + whole[:n_context], whole[n_context:]
    else:
        context_tokens = prefix or [_fallback_prefix(tokenizer)]
        continuation_tokens = encode(tokenizer, continuation)
    tokens = context_tokens + continuation_tokens
    if max_length is not None and len(tokens) > max_length:
        keep = len(prefix)
        tokens = tokens[:keep] + tokens[len(tokens) - (max_length - keep) :]
    return EncodedRequest(tokens=tokens, n_continuation=min(len(continuation_tokens), len(tokens) - 1))


@torch.inference_mode()
def loglikelihoods(
    model: Any,
    tokenizer: Any,
    requests: list[tuple[str, str]],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    device: Any = None,
    progress: bool = False,
    desc: str = "scoring",
) -> list[float]:
    """Sum of log-probabilities (nats) of each continuation given its context, in request order."""
    device = device if device is not None else model_device(model)
    max_length = max_length or max_context_length(model)
    prefix = bos_prefix(tokenizer)
    encoded = [encode_request(tokenizer, ctx, cont, prefix, max_length) for ctx, cont in requests]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].tokens))
    pad = pad_id(tokenizer)
    starts = list(range(0, len(order), batch_size))

    def batch(number: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        chosen = order[starts[number] : starts[number] + batch_size]
        input_ids, attention_mask = right_pad([encoded[i].tokens for i in chosen], pad, device)
        spans = [(len(encoded[i].tokens) - encoded[i].n_continuation, len(encoded[i].tokens)) for i in chosen]
        return input_ids, attention_mask, spans

    if starts:
        choose_scoring_path(model, *batch(0)[:2])  # decided on batch 0, whichever rank scores it (see sharding)
    scored = run_batches(
        len(starts), lambda number: span_logprob_sums(model, *batch(number)), desc=desc, progress=progress
    )
    scores = [0.0] * len(encoded)
    for begin, batch_scores in zip(starts, scored):
        for index, score in zip(order[begin : begin + batch_size], batch_scores):
            scores[index] = score
    return scores


def _fallback_prefix(tokenizer: Any) -> int:
    """The token the harness conditions an empty context on: BOS if the tokenizer has one, else EOS."""
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return pad_id(tokenizer)
