"""Scoring: a prompt's per-token log-probabilities under both models, and where the pruned one starts to differ.

Reading two continuations shows *that* a pruned model writes differently; scoring the same tokens under both
shows *where* its predictions part from the dense model's.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import torch

from compare_limits import check_prompt
from compare_loading import LoadedModel

#: A pruned token log-probability this far (in nats) from the dense one counts as a large gap in the Score tab.
GAP_NATS = 1.0
DIVERGENCE_DEFINITION = (
    "The first divergence is the first prompt position whose next-token prediction (top-1, the argmax of the "
    "model's distribution given the tokens before it) differs between the dense and the pruned model. Positions "
    "count the prompt's tokens from 0; position 0 is never scored because nothing precedes it. A large gap is a "
    f"position where the two log-probabilities of the actual prompt token differ by more than {GAP_NATS:g} nat."
)


def score_prompt(dense: LoadedModel, pruned: LoadedModel, prompt: str) -> dict[str, Any]:
    """Per-token log-likelihood of ``prompt`` under both models and the first positions where they part ways."""
    ids = check_prompt(prompt, dense.tokenizer)
    pruned_ids = check_prompt(prompt, pruned.tokenizer)
    # A trimmed vocabulary numbers tokens differently: the same split into the same token strings is what counts.
    if dense.tokenizer.convert_ids_to_tokens(ids) != pruned.tokenizer.convert_ids_to_tokens(pruned_ids):
        raise gr.Error(
            "The two models split this prompt into different tokens, so they cannot be compared token by token."
        )
    if len(ids) < 2:
        raise gr.Error("The prompt needs at least two tokens to score; type a few more words.")
    dense_lp, dense_top = token_scores(dense, ids)
    pruned_lp, pruned_ids_top = token_scores(pruned, pruned_ids)
    # Top-1 guesses as dense-model ids, so that they compare whatever each model's numbering (-1: no such token).
    dense_vocab = dense.tokenizer.get_vocab()
    pruned_top = [dense_vocab.get(t, -1) for t in pruned.tokenizer.convert_ids_to_tokens(pruned_ids_top)]
    decode = dense.tokenizer.decode
    rows = [
        {
            "position": i,
            "token": decode([ids[i]]),
            "dense_logprob": round(dense_lp[i - 1], 4),
            "pruned_logprob": round(pruned_lp[i - 1], 4),
            "delta": round(pruned_lp[i - 1] - dense_lp[i - 1], 4),
            "dense_top1": decode([dense_top[i - 1]]),
            "pruned_top1": pruned.tokenizer.decode([pruned_ids_top[i - 1]]),
        }
        for i in range(1, len(ids))
    ]
    # Token ids, not their text, decide a divergence: two different tokens can decode to the same string.
    first_top1 = next((rows[i] for i in range(len(rows)) if dense_top[i] != pruned_top[i]), None)
    first_gap = next(
        (r for r in rows if abs(pruned_lp[r["position"] - 1] - dense_lp[r["position"] - 1]) > GAP_NATS), None
    )
    return {
        "tokens_scored": len(rows),
        "dense": _totals(dense_lp),
        "pruned": _totals(pruned_lp),
        "first_divergence": first_top1,
        "first_large_gap": first_gap,
        "gap_threshold_nats": GAP_NATS,
        "definition": DIVERGENCE_DEFINITION,
        "rows": rows,
    }


@torch.inference_mode()
def token_scores(loaded: LoadedModel, ids: list[int]) -> tuple[list[float], list[int]]:
    """Log-probability of each prompt token after the first, and the model's top-1 guess at each position."""
    input_ids = torch.tensor([ids], device=loaded.device)
    logprobs = torch.log_softmax(loaded.model(input_ids=input_ids).logits[0, :-1].float(), dim=-1)
    actual = logprobs.gather(1, input_ids[0, 1:, None])[:, 0]
    return actual.tolist(), logprobs.argmax(-1).tolist()


def _totals(logprobs: list[float]) -> dict[str, float]:
    total = sum(logprobs)
    return {
        "total_logprob": round(total, 4),
        "mean_logprob": round(total / len(logprobs), 4),
        "perplexity": round(math.exp(-total / len(logprobs)), 4),
    }


def score_summary(result: dict[str, Any]) -> str:
    """One paragraph for people: where the models first disagree, and the totals."""
    d, p = result["dense"], result["pruned"]
    first = result["first_divergence"]
    where = (
        f"The pruned model's top-1 prediction first differs at **position {first['position']}** (token "
        f"`{first['token']!r}`): dense expects `{first['dense_top1']!r}`, pruned `{first['pruned_top1']!r}`."
        if first
        else "The two models make the same top-1 prediction at every position of this prompt."
    )
    gap = result["first_large_gap"]
    gap_text = (
        f" The first log-probability gap above {GAP_NATS:g} nat is at position {gap['position']}"
        f" (Δ {gap['delta']:+.2f})."
        if gap
        else f" No position differs by more than {GAP_NATS:g} nat."
    )
    return (
        f"{where}{gap_text}\n\nOver {result['tokens_scored']} scored tokens: dense log-likelihood "
        f"{d['total_logprob']:.2f} (perplexity {d['perplexity']:.2f}), pruned {p['total_logprob']:.2f} "
        f"(perplexity {p['perplexity']:.2f}).\n\n*{DIVERGENCE_DEFINITION}*"
    )
