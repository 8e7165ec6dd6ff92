"""Before any block is pruned: the checks, the trimmed vocabulary, the calibration set."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from ..calibration import CalibrationSet, Mix, build_calibration, normalize, open_source
from ..errors import (
    CalibrationSourceError,
    HfpruneWarning,
    InvalidStructuredSpecError,
    SequenceTooLongError,
    UnknownLanguageError,
)
from ..models.discovery import position_limit
from ..pruning.sparsity_pattern import Structure
from ..vocab import VocabTrimResult, trim_vocab
from .settings import PruneSettings


def check_sequence_length(model: nn.Module, seqlen: int) -> None:
    """Refuse samples longer than a learned position table; warn when they pass a rotary model's trained range.

    Raises:
        SequenceTooLongError: the model's positions are a learned table with fewer than ``seqlen`` rows.
    """
    limit, learned = position_limit(model)
    if limit is None or seqlen <= limit:
        return
    if learned:
        raise SequenceTooLongError(
            f"--seqlen {seqlen} is longer than the {limit} positions this model has learned; use --seqlen {limit} or less"
        )
    warnings.warn(
        f"--seqlen {seqlen} is beyond this model's max_position_embeddings ({limit}): calibration runs outside the "
        f"positions it was trained on; --seqlen {limit} or less keeps it inside",
        HfpruneWarning,
        stacklevel=3,
    )


def _seqlen(settings: PruneSettings) -> int:
    calibration = settings.calibration
    return calibration.seqlen if isinstance(calibration, CalibrationSet) else settings.seqlen


def trim_for_pruning(model: nn.Module, tokenizer: Any, settings: PruneSettings, **options: Any) -> VocabTrimResult:
    """Trim the vocabulary as ``settings.vocab`` says, to the calibration mix's languages unless it names its own,
    from the calibration source unless it names its own."""
    assert settings.vocab is not None
    if tokenizer is None:
        raise CalibrationSourceError("trimming the vocabulary needs the model's tokenizer, and this model has none")
    vocab = settings.vocab if settings.vocab.langs else settings.vocab.with_langs(calibration_languages(settings))
    return trim_vocab(model, tokenizer, vocab, source=settings.calib_source, **options)


def calibration_languages(settings: PruneSettings) -> list[str]:
    """The languages a run calibrates on: its mix's, its samples', or every language its source holds."""
    if isinstance(settings.calibration, CalibrationSet):
        return list(dict.fromkeys(settings.calibration.languages))
    if settings.calibration is not None:
        return Mix.parse(settings.calibration).languages
    found = []
    for key in open_source(settings.calib_source).languages():
        try:
            found.append(normalize(key))
        except UnknownLanguageError:
            continue  # a file such as notes.txt is not a language
    return Mix.even(sorted(set(found))).languages


def calibration_set(tokenizer: Any, settings: PruneSettings) -> CalibrationSet:
    """The samples ``settings`` asks for: given ready, or drawn from its source with the tokenizer."""
    if isinstance(settings.calibration, CalibrationSet):
        return settings.calibration
    if tokenizer is None:
        raise CalibrationSourceError("calibration text needs a tokenizer, and this model has none")
    mix = Mix.parse(settings.calibration) if settings.calibration is not None else None
    source = open_source(settings.calib_source, langs=mix.languages if mix else ())
    return build_calibration(tokenizer, source, mix, seqlen=settings.seqlen, seed=settings.seed)


def _refuse_structured_options(settings: PruneSettings, structure: Structure) -> None:
    """``lang_agg`` and ``refit=False`` choose how structures are removed: with zero-making pruning they would be
    silently ignored, so they are refused."""
    if settings.lang_agg is not None or not settings.refit:
        given = "--lang-agg" if settings.lang_agg is not None else "--no-refit"
        raise InvalidStructuredSpecError(
            f"{given} applies to structured pruning (--structure width:F, heads:K or depth:K), not to {structure} "
            "sparsity; leave it out or ask for a structured removal"
        )
