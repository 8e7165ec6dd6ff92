"""Errors of ``hfprune eval``: each names what is wrong and what to do about it."""

from __future__ import annotations

from hfprune.errors import HfpruneError


class UnknownTaskError(HfpruneError):
    """A task name that is not defined; the message lists the tasks that are."""


class LanguageNotAvailableError(HfpruneError):
    """The data has no file for a requested language; the message lists the languages it has."""


class DataFileMissingError(HfpruneError):
    """An expected data file (or the data folder itself) is missing; the message names the path."""


class DataSourceError(HfpruneError):
    """A text source (folder, file or ``datasets`` id) cannot be read."""


class EmptyTextError(HfpruneError):
    """A text to score holds too few tokens to compute a perplexity."""


class ContextLengthError(HfpruneError):
    """The context length or stride does not fit the model (above its maximum, or below 2 tokens)."""


class BaselineMismatchError(HfpruneError):
    """Dense and pruned results were computed on different data or settings and cannot be compared."""
