"""Perplexity of a causal LM on one document, in fixed-length windows, with bits per byte.

Token perplexity depends on the tokenizer; bits per byte (total NLL in bits / UTF-8 bytes of the text)
does not, so it compares models with different tokenizers and languages with different scripts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DataFileMissingError, EmptyTextError
from ..io import read_text_file
from .batching import model_device, right_pad
from .limits import check_context_length
from .metrics import WindowedPerplexity
from .next_token import choose_scoring_path, span_logprob_sums
from .sharding import run_batches
from .tokenization import bos_prefix, encode, pad_id
from .windows import Window, plan_windows


@dataclass(frozen=True)
class PerplexityResult:
    """What one document scored: ``ppl = exp(nll_sum / n_tokens)``; ``bits_per_byte`` over ``n_bytes``."""

    ppl: float
    nll_sum: float
    n_tokens: int
    n_bytes: int
    bits_per_byte: float
    ppl_stderr: float = float("nan")
    bits_per_byte_stderr: float = float("nan")
    context_length: int = 0
    stride: int = 0
    n_windows: int = 0
    window_nll: tuple[float, ...] = field(default=(), repr=False)
    window_tokens: tuple[int, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (per-window values left out: they can be long)."""
        data = asdict(self)
        data.pop("window_nll")
        data.pop("window_tokens")
        return data


def perplexity(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    context_length: int = 512,
    stride: int | None = None,
    batch_size: int = 8,
    device: Any = None,
    progress: bool = False,
) -> PerplexityResult:
    """Score ``text`` in windows of ``context_length`` positions (BOS included where the model uses it).

    Args:
        stride: new tokens scored per window; default ``context_length - 1`` (each token scored once,
            with as much context as fits). Smaller strides give every token more context, at more cost.
        batch_size: windows per forward pass.
        device: where to run; default the model's device.

    Raises:
        EmptyTextError: the text is empty or too short to score.
        ContextLengthError: ``context_length`` is above the model's maximum, or the stride does not fit.
    """
    if not text or not text.strip():
        raise EmptyTextError("the text to score is empty; give a file or source with some text in it")
    check_context_length(model, context_length)
    prefix = bos_prefix(tokenizer)
    tokens = encode(tokenizer, text)
    windows = plan_windows(len(tokens), context_length, stride, has_bos=bool(prefix))
    nlls, counts = score_windows(
        model, tokens, windows, prefix, pad_id(tokenizer), batch_size=batch_size, device=device, progress=progress
    )
    n_bytes = len(text.encode("utf-8"))
    values = WindowedPerplexity().compute(nll_sums=nlls, n_tokens=counts, n_bytes=n_bytes)
    return PerplexityResult(
        ppl=values["perplexity"],
        nll_sum=values["nll_sum"],
        n_tokens=values["n_tokens"],
        n_bytes=n_bytes,
        bits_per_byte=values["bits_per_byte"],
        ppl_stderr=values["perplexity_stderr"],
        bits_per_byte_stderr=values["bits_per_byte_stderr"],
        context_length=context_length,
        stride=stride if stride is not None else context_length - 1,
        n_windows=len(windows),
        window_nll=tuple(nlls),
        window_tokens=tuple(counts),
    )


@torch.inference_mode()
def score_windows(
    model: Any,
    tokens: list[int],
    windows: list[Window],
    prefix: list[int],
    pad: int,
    *,
    batch_size: int = 8,
    device: Any = None,
    progress: bool = False,
) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and token count of each window's scored tokens, batched with right padding.

    Under a launcher the batches are shared by the ranks (:mod:`~hfprune.evaluation.sharding`); every rank
    returns every window's values, identical to one process's.
    """
    device = device if device is not None else model_device(model)
    starts = list(range(0, len(windows), batch_size))

    def batch(number: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        chunk = windows[starts[number] : starts[number] + batch_size]
        rows = [prefix + tokens[w.start : w.end] for w in chunk]
        input_ids, attention_mask = right_pad(rows, pad, device)
        return (
            input_ids,
            attention_mask,
            [(len(prefix) + w.score_from - w.start, len(ids)) for w, ids in zip(chunk, rows)],
        )

    def score(number: int) -> tuple[list[float], list[int]]:
        input_ids, attention_mask, spans = batch(number)
        return [-v for v in span_logprob_sums(model, input_ids, attention_mask, spans)], [e - f for f, e in spans]

    if starts:
        choose_scoring_path(model, *batch(0)[:2])  # decided on batch 0, whichever rank scores it (see sharding)
    scored = run_batches(len(starts), score, desc="perplexity", progress=progress)
    return [nll for part, _ in scored for nll in part], [n for _, part in scored for n in part]


def load_flores(lang: str, data_dir: str | Path | None = None) -> str:
    """FLORES-200 devtest sentences of one language, joined by newlines into one document, from the first data
    folder that has them (``data_dir`` alone when given; see :mod:`hfprune.data_sources`).

    Raises:
        DataFileMissingError: no folder has ``flores/{lang}.devtest.txt``.
    """
    from ..data_sources import find_file, tried
    from .data import resolve_roots

    roots = resolve_roots(data_dir)
    found = find_file(roots, f"flores/{lang}.devtest.txt")
    if found is None:
        available = sorted(
            {p.name.split(".")[0] for root in roots for p in (root.path / "flores").glob("*.devtest.txt")}
        )
        raise DataFileMissingError(
            f"no FLORES file for language {lang!r} (flores/{lang}.devtest.txt) in {tried(roots, None)} "
            f"(FLORES languages there: {', '.join(available) or 'none'}); pass --eval-source DIR with it"
        )
    path = found[1]
    text = read_text_file(path)
    if not text.strip():
        raise EmptyTextError(f"{path} is empty; restore it from the data bundle")
    return text.strip("\n")
