"""Where each perplexity window starts and ends, so every scorable token is scored exactly once.

A window is ``prefix + tokens[start:end]`` and scores ``tokens[score_from:end]``. Windows are laid out
by what they score: consecutive runs of ``stride`` tokens, each window reaching back as far as the
context length allows. Without BOS the document's first token has nothing to condition on and is not
scored; with BOS it is scored after BOS, the way the model was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ContextLengthError, EmptyTextError


@dataclass(frozen=True)
class Window:
    """One model input: tokens ``[start, end)`` after the prefix; scores tokens ``[score_from, end)``."""

    start: int
    end: int
    score_from: int


def plan_windows(n_tokens: int, context_length: int, stride: int | None, has_bos: bool) -> list[Window]:
    """Windows of at most ``context_length`` positions (BOS included) that score each token once.

    ``stride`` is how many new tokens each window scores (default: as many as fit, ``context_length - 1``);
    a smaller stride gives every scored token at least ``context_length - 1 - stride`` tokens of context.
    """
    max_stride = context_length - 1
    stride = max_stride if stride is None else stride
    if not 1 <= stride <= max_stride:
        raise ContextLengthError(
            f"stride {stride} must be between 1 and context length - 1 ({max_stride}); "
            "pass a smaller --stride or a larger --context-length"
        )
    first = 0 if has_bos else 1
    if n_tokens <= first:
        raise EmptyTextError(
            f"the text has {n_tokens} token(s), too few to score; give a text of at least {first + 1} tokens"
        )
    room = context_length - (1 if has_bos else 0)
    windows = []
    score_from = first
    while score_from < n_tokens:
        end = min(score_from + stride, n_tokens)
        windows.append(Window(start=max(0, end - room), end=end, score_from=score_from))
        score_from = end
    return windows
