"""What a request may ask for: the limits the page's sliders enforce, checked again on the server.

API clients (``gradio_client``, plain HTTP) do not go through the sliders, so every generation and scoring
request passes through :func:`check_prompt` and :func:`check_settings` before a model sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gradio as gr

MAX_PROMPT_CHARS = 2000
MAX_PROMPT_TOKENS = 512
MAX_NEW_TOKENS = 256
DEFAULT_NEW_TOKENS = 64
TEMPERATURE_MAX = 2.0
#: Below this, logits / temperature overflow to inf (1e-300 gives NaN probabilities): 0 means greedy instead.
TEMPERATURE_MIN = 0.01
TOP_P_MIN = 0.05
SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class Settings:
    """Generation settings, already checked against the limits."""

    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int


def check_prompt(prompt: str | None, tokenizer: Any) -> list[int]:
    """The prompt's token ids, or a :class:`gr.Error` that says which limit it breaks."""
    text = prompt or ""
    if not text.strip():
        raise gr.Error("Type a prompt first (or pick an example for a language).")
    if len(text) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The prompt has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}. Shorten it.")
    ids = tokenizer(text).input_ids
    if len(ids) > MAX_PROMPT_TOKENS:
        raise gr.Error(f"The prompt is {len(ids)} tokens long; the limit is {MAX_PROMPT_TOKENS}. Shorten it.")
    return list(ids)


def check_settings(max_new_tokens: Any, temperature: Any, top_p: Any, seed: Any) -> Settings:
    """Re-check the sliders' bounds on the server: API clients do not go through the sliders."""

    def number(value: Any, name: str) -> float:
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise gr.Error(f"{name} must be a number, not {value!r}.") from None
        if math.isnan(result) or math.isinf(result):
            raise gr.Error(f"{name} must be a finite number.")
        return result

    new_tokens, temp, nucleus, seed_value = (
        number(max_new_tokens, "max_new_tokens"),
        number(temperature, "temperature"),
        number(top_p, "top_p"),
        number(seed, "seed"),
    )
    if not 1 <= new_tokens <= MAX_NEW_TOKENS or new_tokens != int(new_tokens):
        raise gr.Error(f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}; got {max_new_tokens}.")
    if not (temp == 0 or TEMPERATURE_MIN <= temp <= TEMPERATURE_MAX):
        raise gr.Error(
            f"temperature must be 0 (greedy) or between {TEMPERATURE_MIN:g} and {TEMPERATURE_MAX:g}; got {temperature}."
        )
    if not TOP_P_MIN <= nucleus <= 1:
        raise gr.Error(f"top_p must be between {TOP_P_MIN:g} and 1; got {top_p}.")
    if not 0 <= seed_value <= SEED_MAX or seed_value != int(seed_value):
        raise gr.Error(f"seed must be a whole number from 0 to {SEED_MAX}; got {seed}.")
    return Settings(int(new_tokens), temp, nucleus, int(seed_value))
