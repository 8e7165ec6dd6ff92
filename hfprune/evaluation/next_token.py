"""Log-probabilities of chosen next tokens, without materialising the whole logits tensor.

A causal LM's forward returns (rows x positions x vocabulary) logits, and scoring normalises them in one
more pass that writes a copy. With Gemma 3's 262,144-token vocabulary, 8 windows of 512 tokens make 4 GiB
of fp32 logits, then 4 GiB more. Here the model's body runs once, and its output layer and an in-place
``logsumexp`` run on chunks of only the positions that are scored (1024 positions at most for a large
vocabulary: 1 GiB for Gemma), and only for those positions: log-likelihood scoring never projects the context.
Models whose output layer does something this module does not reproduce fall back to the plain forward: the
split is checked once per model against the model's own logits.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: logits elements per chunk (fp32: 16 MiB, cache-sized for small vocabularies), but never fewer than MIN_CHUNK
#: positions: the output matrix is read once per chunk, and for a 262k vocabulary (670 MB in fp32) chunks of
#: 64 positions made Gemma 3 270M's perplexity 35% slower than one plain forward, 1024 positions as fast
CHUNK_ELEMENTS = 2**22
MIN_CHUNK = 1024

_SPLITS: weakref.WeakKeyDictionary[Any, _Split | None] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Split:
    """The model as body (tokens -> last hidden states) and head (hidden states -> logits)."""

    body: Any
    head: Callable[[torch.Tensor], torch.Tensor]
    vocab: int


def next_token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rows: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """``log p(targets[k] | input_ids[rows[k], : positions[k] + 1])`` for every ``k``, in fp32."""
    split = _split(model, input_ids, attention_mask)
    if split is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return _logprobs(logits[rows, positions].float(), targets)
    hidden = split.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]
    picked = hidden[rows, positions]
    out = torch.empty(len(targets), dtype=torch.float32, device=hidden.device)
    step = max(MIN_CHUNK, CHUNK_ELEMENTS // split.vocab)
    for begin in range(0, len(targets), step):
        end = begin + step
        out[begin:end] = _logprobs(split.head(picked[begin:end]).float(), targets[begin:end])
    return out


def span_logprob_sums(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, spans: list[tuple[int, int]]
) -> list[float]:
    """Summed log-probability (nats) of tokens ``[first, end)`` of each row, given the tokens before them.

    ``spans[row] = (first, end)``, with ``first >= 1`` (the first token of a row has nothing to condition on).
    """
    device = input_ids.device
    owner = [row for row, (first, end) in enumerate(spans) for _ in range(first, end)]
    positions = [p for first, end in spans for p in range(first - 1, end - 1)]
    owner_t, positions_t = torch.tensor(owner, device=device), torch.tensor(positions, device=device)
    targets = input_ids[owner_t, positions_t + 1]
    logprobs = next_token_logprobs(model, input_ids, attention_mask, owner_t, positions_t, targets)
    sums = torch.zeros(len(spans), dtype=torch.float64, device=device)
    return sums.index_add_(0, owner_t, logprobs.double()).tolist()


def choose_scoring_path(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
    """Decide (once per model) between the body/head split and the plain forward, on this batch.

    Callers pass their *first* batch, so the decision rests on the same rows in one process and on every rank
    of a launch (each rank would otherwise decide on its own first batch, which differs).
    """
    _split(model, input_ids, attention_mask)


def _logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[k, targets[k]]``; overwrites ``logits`` (a temporary) to save a pass over it."""
    chosen = logits.gather(1, targets[:, None]).squeeze(1)
    top = logits.amax(-1, keepdim=True)
    return chosen - logits.sub_(top).exp_().sum(-1).log_().add_(top.squeeze(-1))


def _split(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> _Split | None:
    """The model's body/head split, found and checked on the first batch it scores (then remembered)."""
    try:
        return _SPLITS[model]
    except (KeyError, TypeError):
        pass
    split = _find_split(model)
    if split is not None and not _agrees(model, split, input_ids[:1, :32], attention_mask[:1, :32]):
        split = None
    try:
        _SPLITS[model] = split
    except TypeError:  # not weak-referenceable: check again next time
        pass
    return split


def _find_split(model: Any) -> _Split | None:
    """``model.<base_model_prefix>`` as body, the output embeddings (and Gemma's final soft-capping) as head."""
    prefix = getattr(model, "base_model_prefix", "")
    body = getattr(model, prefix, None) if prefix else None
    get_head = getattr(model, "get_output_embeddings", None)
    projection = get_head() if get_head is not None else None
    if body is None or body is model or not isinstance(projection, torch.nn.Linear):
        return None
    config = getattr(model, "config", None)
    cap = getattr(config, "final_logit_softcapping", None)
    if cap is None and config is not None and hasattr(config, "get_text_config"):
        cap = getattr(config.get_text_config(), "final_logit_softcapping", None)

    def head(hidden: torch.Tensor) -> torch.Tensor:
        logits = projection(hidden)
        return torch.tanh(logits / cap) * cap if cap else logits

    return _Split(body=body, head=head, vocab=projection.out_features)


@torch.inference_mode()
def _agrees(model: Any, split: _Split, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> bool:
    """Whether body + head reproduce the model's own logits on a few tokens (else: plain forward)."""
    try:
        reference = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()
        mine = split.head(split.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]).float()
    except Exception:  # noqa: BLE001 - any failure of the split means: use the plain forward
        return False
    scale = reference.abs().max().clamp_min(1.0)
    return mine.shape == reference.shape and bool(((mine - reference).abs().max() / scale) < 1e-4)
