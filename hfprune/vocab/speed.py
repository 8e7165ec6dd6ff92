"""Prefill and decode speed with plain ``transformers`` ``generate`` (greedy), measured where the model runs.

Prefill: one ``generate`` call that produces a single token (one forward over the prompt). Decode: a call that
produces ``new_tokens`` tokens (end-of-text suppressed by ``min_new_tokens``) minus the prefill time, per new
token after the first. Each prompt is timed ``repeats`` times and the median kept; the first call of each
model is a warm-up and not counted.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

#: New tokens per decode measurement.
DEFAULT_NEW_TOKENS = 16
DEFAULT_REPEATS = 3


def timed_generate(model: Any, ids: torch.Tensor, new_tokens: int, pad: int) -> float:
    """Seconds of one greedy ``generate`` of exactly ``new_tokens`` tokens after ``ids``."""
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
    return time.perf_counter() - started


def measure_generation(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    new_tokens: int = DEFAULT_NEW_TOKENS,
    repeats: int = DEFAULT_REPEATS,
) -> dict[str, Any]:
    """Prefill and decode tokens/s of ``model`` on ``prompts`` (each in the model's own tokens)."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    encoded = [torch.tensor([tokenizer(p)["input_ids"]], device=device) for p in prompts]
    timed_generate(model, encoded[0], 1, pad)  # warm-up: first calls set up kernels and thread pools
    timed_generate(model, encoded[0], new_tokens, pad)
    prefill, decode = [], []
    for ids in encoded:
        first = [timed_generate(model, ids, 1, pad) for _ in range(repeats)]
        whole = [timed_generate(model, ids, new_tokens, pad) for _ in range(repeats)]
        prefill.append(statistics.median(first))
        decode.append(max(statistics.median(whole) - prefill[-1], 1e-9))
    prompt_tokens = sum(ids.shape[1] for ids in encoded)
    return {
        "prompts": len(prompts),
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "repeats": repeats,
        "prefill_s": sum(prefill),
        "prefill_tokens_per_s": prompt_tokens / sum(prefill),
        "decode_tokens_per_s": len(encoded) * (new_tokens - 1) / sum(decode),
        "device": str(device),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "how": "transformers generate, greedy; prefill = 1 new token, decode = (N new tokens - prefill) / (N-1); "
        f"median of {repeats}",
    }
