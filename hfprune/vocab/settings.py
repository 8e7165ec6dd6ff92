"""What to keep of a vocabulary and how to check the result: one typed :class:`VocabSettings`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..calibration import CalibrationSource, SourceSpec, normalize
from ..data_sources import HUB_TEXT
from ..errors import VocabSizeError
from .frequency import DEFAULT_LIST_WORDS

#: ``source="wikipedia"`` (``--vocab-source wikipedia``): each language's Wikipedia, streamed from the Hub.
WIKIPEDIA = "wikipedia"
#: Characters of vocabulary text read per language (a ``datasets`` source is streamed only this far).
DEFAULT_VOCAB_CHARS = 2_000_000
#: Identically tokenized held-out sentences per kept language on which the logits are compared.
DEFAULT_LOGIT_SENTENCES = 4
#: Languages not kept whose tokenization is measured (one sharing a kept script, one not).
DEFAULT_OTHER_LANGUAGES = 2


@dataclass(frozen=True)
class VocabSettings:
    """Which tokens a trimmed vocabulary keeps, and how the result is verified.

    Attributes:
        langs: languages whose text decides the kept tokens; ``None``: the calibration mix's languages (or
            every language of the source when there is no mix).
        source: the vocabulary corpus, anything the calibration accepts (a folder, a ``datasets`` id, a
            ``SourceSpec``), or ``"wikipedia"`` for Wikipedia in each language streamed from the Hub (only
            ``chars`` far); ``None``: the calibration source (by default hfprune's default calibration text).
        weights: each language's share of the frequency budget (``--langs en:2,sw:1``); ``None``: equal shares.
            Each language's frequencies are normalised first, so a language with more text gets no more room.
        min_count: a token seen fewer times than this in the running text is not kept for being seen there.
        size: the whole vocabulary's rows (special, byte and script tokens included), filled by frequency.
        coverage: keep the fewest tokens that cover this share of each language's token occurrences (in its
            frequency source); with ``size`` too, ``size`` caps it.
        word_lists: mix word-frequency lists (``wordfreq``, where it has the language) into the running text's
            counts: a list stands for far more text than the corpus (see :mod:`hfprune.vocab.frequency`).
        list_words: words of each list used (the most frequent first).
        scripts: also keep every token written only in the kept languages' Unicode scripts (plus Common and
            Inherited), which leaves the tokenization of all text in those scripts unchanged.
        chars: characters of text read per language.
        verify_source: held-out text: ``None`` for FLORES devtest of the first data folder that has it, or a folder of
            ``{lang}.txt`` / ``{lang}.devtest.txt`` files; never the vocabulary corpus.
        other_langs: languages *not* kept whose tokenization is measured too; ``None`` picks two.
        verify_sentences: held-out sentences per language (``None``: all).
        logit_sentences: identically tokenized sentences per kept language whose logits are compared.
        measure_speed: time greedy ``generate`` before and after trimming (prefill and decode tokens/s).
    """

    langs: tuple[str, ...] | None = None
    source: CalibrationSource = None
    weights: tuple[float, ...] | None = None
    min_count: int = 1
    size: int | None = None
    coverage: float | None = None
    word_lists: bool = True
    list_words: int = DEFAULT_LIST_WORDS
    scripts: bool = False
    chars: int = DEFAULT_VOCAB_CHARS
    verify_source: str | Path | None = None
    other_langs: tuple[str, ...] | None = None
    verify_sentences: int | None = None
    logit_sentences: int = DEFAULT_LOGIT_SENTENCES
    measure_speed: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.source, str) and self.source == WIKIPEDIA:
            wiki = HUB_TEXT["calibration"]
            spec = SourceSpec(wiki.dataset, config_pattern=wiki.config, split=wiki.split, text_field=wiki.column)
            object.__setattr__(self, "source", spec)
        if isinstance(self.langs, str) and ":" in self.langs:
            langs, weights = _weighted(self.langs)
            object.__setattr__(self, "langs", langs)
            object.__setattr__(self, "weights", weights)
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if self.langs is None or len(self.weights) != len(self.langs) or min(self.weights) <= 0:
                raise VocabSizeError("give one positive weight per vocabulary language, e.g. --langs en:2,sw:1")
        if self.coverage is not None and not 0 < self.coverage <= 1:
            raise VocabSizeError(f"--vocab-coverage is a share of token occurrences in (0, 1], got {self.coverage}")
        if self.list_words < 1:
            raise VocabSizeError(f"--vocab-list-words must be a positive number of words, got {self.list_words}")
        for name in ("langs", "other_langs"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [part for part in value.split(",") if part.strip()]
            if value is not None:
                object.__setattr__(self, name, tuple(dict.fromkeys(normalize(lang) for lang in value)))
        if self.min_count < 1:
            raise VocabSizeError(f"--vocab-min-count must be at least 1, got {self.min_count}")
        if self.size is not None and self.size < 1:
            raise VocabSizeError(f"--vocab-size must be a positive number of tokens, got {self.size}")
        if self.chars < 1:
            raise VocabSizeError(f"--vocab-chars must be a positive number of characters, got {self.chars}")
        if self.logit_sentences < 1:
            raise VocabSizeError(
                f"at least one sentence per language must check the logits, got {self.logit_sentences}"
            )

    def with_langs(self, langs: Sequence[str]) -> VocabSettings:
        return dataclasses.replace(self, langs=tuple(langs))

    def describe(self) -> dict[str, Any]:
        """JSON-friendly settings (what ``hfprune.json`` records and ``hfprune run`` hashes)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["source"] = _describe_source(self.source)
        data["verify_source"] = str(self.verify_source) if self.verify_source is not None else "flores"
        data["langs"] = list(self.langs) if self.langs is not None else None
        data["other_langs"] = list(self.other_langs) if self.other_langs is not None else None
        return data


def _weighted(text: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``"en:2,sw:1"`` -> languages and weights (a language without ``:W`` weighs 1)."""
    langs, weights = [], []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lang, _, weight = part.partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise VocabSizeError(f"'{part}': a language's weight is a number, e.g. en:2,sw:1") from None
        if value <= 0:
            raise VocabSizeError(f"'{part}': a language's weight must be positive")
        langs.append(normalize(lang))
        weights.append(value)
    if len(set(langs)) != len(langs):
        raise VocabSizeError(f"'{text}' names a language twice")
    return tuple(langs), tuple(weights)


def _describe_source(source: CalibrationSource) -> Any:
    if source is None or isinstance(source, (str, Path)):
        return None if source is None else str(source)
    if isinstance(source, SourceSpec):
        return dataclasses.asdict(source)
    return source.describe()
