"""The vocabulary corpus: text of the kept languages, tokenized by the original tokenizer, as token counts.

Text comes from any calibration source (a folder of ``{lang}.txt`` / ``.jsonl`` files, a ``datasets`` id streamed
only as far as the character budget, or hfprune's default calibration text), so the tokens a model keeps are those
its calibration languages use.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..calibration import TextSource, match
from ..errors import CalibrationSourceError, VocabSourceError

#: documents tokenized per call (the fast tokenizer parallelises a batch)
_BATCH = 256


@dataclass
class LanguageCounts:
    """Token counts of one language's text, and where the text came from."""

    counts: Counter[int]
    source_key: str
    documents: int
    chars: int
    text_sha256: str

    def describe(self) -> dict[str, Any]:
        return {
            "source_key": self.source_key,
            "documents": self.documents,
            "chars": self.chars,
            "tokens": sum(self.counts.values()),
            "distinct_tokens": len(self.counts),
            "text_sha256": self.text_sha256,
        }


@dataclass
class CorpusCounts:
    """Per-language counts and the source they came from."""

    languages: dict[str, LanguageCounts]
    source: dict[str, Any] = field(default_factory=dict)


def count_tokens(tokenizer: Any, source: TextSource, langs: Sequence[str], chars: int) -> CorpusCounts:
    """Count the tokens of up to ``chars`` characters of each language's text (no special tokens added).

    Raises:
        VocabSourceError: the source has no text for a language (or cannot be opened).
    """
    found: dict[str, LanguageCounts] = {}
    for lang in langs:
        key = match(lang, source.languages())
        if key is None:
            raise VocabSourceError(
                f"the vocabulary source has no text for '{lang}'; it has: {', '.join(source.languages()) or 'nothing'}"
                ". Pass --vocab-source with text of every kept language"
            )
        try:
            documents = _budget(source.documents(key, min_chars=chars), chars)
        except CalibrationSourceError as err:
            raise VocabSourceError(
                f"the vocabulary source has no text for '{lang}' ({str(err).rstrip('.')}); for trim-vocab, pass "
                "--vocab-source with text of every kept language"
            ) from err
        if not any(doc.strip() for doc in documents):
            raise VocabSourceError(
                f"the vocabulary source's text for '{lang}' is empty; give text of every kept language"
            )
        counts: Counter[int] = Counter()
        digest = hashlib.sha256()
        for start in range(0, len(documents), _BATCH):
            batch = documents[start : start + _BATCH]
            for ids in tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]:
                counts.update(ids)
            for doc in batch:
                digest.update(doc.encode("utf-8") + b"\n")
        found[lang] = LanguageCounts(counts, key, len(documents), sum(len(d) for d in documents), digest.hexdigest())
    return CorpusCounts(found, source.describe())


def _budget(documents: list[str], chars: int) -> list[str]:
    """The first documents up to ``chars`` characters (the last one cut), in source order."""
    kept: list[str] = []
    used = 0
    for doc in documents:
        if used >= chars:
            break
        kept.append(doc[: chars - used])
        used += len(kept[-1])
    return kept
