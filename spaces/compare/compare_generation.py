"""Generation: both models continue the same prompt one token each in turn, so both outputs grow together.

Each model streams with its own KV cache, seeded generator and clock, so the same seed gives the same text and
the tokens/s shown for each model is its own speed although the two take turns.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from typing import Any

import torch
from transformers import DynamicCache

from compare_limits import Settings, check_prompt
from compare_loading import LoadedModel


def stream_pair(
    dense: LoadedModel, pruned: LoadedModel, prompt: str, settings: Settings
) -> Iterator[tuple[str, str, str, str]]:
    """(dense text, pruned text, dense stats, pruned stats) after every token of either model."""
    streams = [TokenStream(m, check_prompt(prompt, m.tokenizer), settings) for m in (dense, pruned)]
    while not all(s.done for s in streams):
        for stream in streams:
            if not stream.done:
                stream.step()
        yield streams[0].text, streams[1].text, streams[0].stats, streams[1].stats


class TokenStream:
    """Generates one model's continuation a token at a time with its own KV cache, RNG and clock.

    A private ``torch.Generator`` (not the global RNG) makes the same seed give the same text for each model,
    whatever else the process is doing. ``seconds`` counts only this model's own forward passes, so the
    tokens/s shown for each model is its own speed even though the two models take turns.
    """

    def __init__(self, loaded: LoadedModel, prompt_ids: list[int], settings: Settings) -> None:
        self.loaded, self.settings = loaded, settings
        self.generator = torch.Generator(device=loaded.device).manual_seed(settings.seed)
        self.next_input = torch.tensor([prompt_ids], device=loaded.device)
        # OpenVINO keeps its cache inside the compiled model: no cache on the first step starts a new sequence.
        self.cache: Any = None if loaded.runtime == "openvino" else DynamicCache()
        self.ids: list[int] = []
        self.seconds = 0.0
        self.done = False

    @torch.inference_mode()
    def step(self) -> None:
        started = time.perf_counter()
        out = self.loaded.model(
            input_ids=self.next_input, use_cache=True, **_cache_argument(self.loaded.model, self.cache)
        )
        self.cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        token = sample_next(out.logits[0, -1].float(), self.settings, self.generator)
        self.seconds += time.perf_counter() - started
        if token in self.loaded.eos_ids:
            self.done = True
            return
        self.ids.append(token)
        self.next_input = torch.tensor([[token]], device=self.loaded.device)
        self.done = len(self.ids) >= self.settings.max_new_tokens

    @property
    def text(self) -> str:
        return visible_text(self.loaded.tokenizer, self.ids)

    @property
    def stats(self) -> str:
        rate = len(self.ids) / self.seconds if self.seconds > 0 else 0.0
        state = "done" if self.done else "generating"
        runtime = " · OpenVINO" if self.loaded.runtime == "openvino" else ""
        return f"{len(self.ids)} tokens · **{rate:.1f} tokens/s** · {state}{runtime}"


def sample_next(logits: torch.Tensor, settings: Settings, generator: torch.Generator) -> int:
    """Greedy at temperature 0; otherwise nucleus sampling from this stream's own seeded generator."""
    if settings.temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / settings.temperature, dim=-1)
    if settings.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= settings.top_p  # the top token is always kept
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


def _cache_argument(model: Any, cache: Any) -> dict[str, Any]:
    """The KV cache under the name this transformers takes (``cache``; ``past_key_values`` before 5.x renamed it)."""
    names = inspect.signature(model.forward).parameters
    return {"cache": cache} if "cache" in names else {"past_key_values": cache}


def visible_text(tokenizer: Any, ids: list[int]) -> str:
    """The text of ``ids`` as the page shows it: a character whose bytes are not all generated yet (a byte-level
    token can end inside a multi-byte character, as in German, Chinese or Hindi text) is held back, so every
    update only ever extends the previous one and no U+FFFD flashes up. A generation cut inside a character
    by the token limit ends before it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return text.rstrip("\ufffd")
