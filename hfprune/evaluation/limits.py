"""The longest input a model accepts, so a too-long context fails early with a clear message."""

from __future__ import annotations

from typing import Any

from ..errors import ContextLengthError

_LENGTH_FIELDS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")


def max_context_length(model: Any) -> int | None:
    """The model's maximum number of positions from its config, or ``None`` when it has no limit."""
    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for field in _LENGTH_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_context_length(model: Any, context_length: int) -> None:
    """Raise :class:`ContextLengthError` when ``context_length`` is below 2 or above the model's maximum."""
    if context_length < 2:
        raise ContextLengthError(
            f"context length {context_length} is too short: a window needs at least 2 tokens "
            "(one to condition on, one to score); pass --context-length 2 or more"
        )
    limit = max_context_length(model)
    if limit is not None and context_length > limit:
        raise ContextLengthError(
            f"context length {context_length} is above this model's maximum of {limit} positions; "
            f"pass --context-length {limit} or less"
        )
