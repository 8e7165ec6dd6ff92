"""How often each language really uses each token: running text and word-frequency lists, per language.

A few megabytes of calibration text miss much of what a language writes (its English tokens cover 85% of the
token occurrences in FLORES English for Gemma 3), so a vocabulary chosen from it alone costs quality. A word
list such as ``wordfreq``'s stands for far more text (its English list is built from billions of words), but
misses numbers, names and punctuation runs, which running text catches. Each language's distribution here is
the mixture of both, each normalised first, so neither the bigger source nor the bigger language crowds out the
other. Word lists are expanded to the forms a tokenizer sees: with a leading space or without, lower case or
capitalised (languages written without spaces: the word alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..constants import cache_dir
from ..errors import VocabSizeError
from ..fingerprints import tokenizer_sha256
from ..io import read_json_object, write_json

#: Words of a word list turned into tokens (the most frequent first).
DEFAULT_LIST_WORDS = 300_000
#: Share of a language's distribution that comes from the word list, where there is one (the rest: running text).
DEFAULT_LIST_SHARE = 0.5
#: The forms a word takes in running text and the share of its occurrences given to each: inside a sentence most
#: words follow a space; a sentence starts with a capital, often with no space before it (those forms only for
#: the most frequent words, which start most sentences: tokenizing every form of every word doubles the time).
SPACED_FORMS = ((" {}", 0.82, str.lower), (" {}", 0.12, str.capitalize))
START_FORMS = (("{}", 0.05, str.capitalize), ("{}", 0.01, str.lower))
START_WORDS = 20_000
UNSPACED_FORMS = (("{}", 1.0, str.lower),)
#: Languages written without spaces between words.
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo"})
#: Part of the cache key: bump it whenever the forms or their shares change.
FORMS_VERSION = 1
#: Strings tokenized per call.
_BATCH = 4096


@dataclass
class LanguageFrequencies:
    """One language's token distribution (sums to 1) and what each source contributed."""

    shares: dict[int, float]
    sources: dict[str, Any] = field(default_factory=dict)

    def coverage(self, kept: set[int]) -> float:
        """Share of this language's token occurrences that ``kept`` covers."""
        return sum(share for token, share in self.shares.items() if token in kept)


def word_list_counts(tokenizer: Any, lang: str, words: int = DEFAULT_LIST_WORDS) -> tuple[Counter[int], dict] | None:
    """Token occurrences per unit of running text implied by ``lang``'s word list, or ``None`` where
    ``wordfreq`` is not installed or has no list for the language. Kept in hfprune's cache per tokenizer
    (tokenizing 300,000 words in four forms takes a quarter of a minute)."""
    try:
        import wordfreq
    except ImportError:
        return None
    if lang not in wordfreq.available_languages(wordlist="best"):
        return None
    version = metadata.version("wordfreq")
    cached = (
        cache_dir()
        / "word-lists"
        / f"{tokenizer_sha256(tokenizer)[:20]}-{lang}-{words}-{version}-f{FORMS_VERSION}.json"
    )
    counts = _read_cached(cached)
    top = sorted(wordfreq.get_frequency_dict(lang, wordlist="best").items(), key=lambda item: -item[1])[:words]
    if counts is None:
        counts = _tokenized(tokenizer, top, UNSPACED_FORMS if lang in UNSPACED else None)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_json(cached, {str(token): weight for token, weight in counts.items()})
        except OSError:
            pass  # a cache that cannot be written costs time next run, never the job
    described = {
        "name": f"wordfreq {version} 'best' list",
        "words": len(top),
        "running_text_share": round(sum(f for _, f in top), 4),
        "forms": "the word alone"
        if lang in UNSPACED
        else f"after a space (lower case, capitalised); sentence-initial for the {START_WORDS:,} most frequent",
        "licence": "CC BY-SA 4.0 (wordfreq data)",
    }
    return counts, described


def _tokenized(tokenizer: Any, top: list[tuple[str, float]], forms: Any) -> Counter[int]:
    texts: list[str] = []
    weights: list[float] = []
    for rank, (word, frequency) in enumerate(top):
        for pattern, share, case in forms or (SPACED_FORMS + (START_FORMS if rank < START_WORDS else ())):
            texts.append(pattern.format(case(word)))
            weights.append(frequency * share)
    counts: Counter[int] = Counter()
    for start in range(0, len(texts), _BATCH):
        encoded = tokenizer(texts[start : start + _BATCH], add_special_tokens=False, verbose=False)["input_ids"]
        for ids, weight in zip(encoded, weights[start : start + _BATCH]):
            for token in ids:
                counts[token] += weight
    return counts


def _read_cached(path: Path) -> Counter[int] | None:
    if not path.is_file():
        return None
    try:
        return Counter({int(token): float(weight) for token, weight in read_json_object(path).items()})
    except (ValueError, TypeError):
        return None  # a broken cache file is recomputed (and rewritten)


def language_frequencies(
    text_counts: Counter[int],
    text_source: dict[str, Any],
    listed: tuple[Counter[int], dict] | None,
    *,
    min_count: int = 1,
    list_share: float = DEFAULT_LIST_SHARE,
) -> LanguageFrequencies:
    """Mix the running text's counts (tokens seen fewer than ``min_count`` times left out) with the word list's,
    each normalised, the word list weighing ``list_share``."""
    seen = {token: n for token, n in text_counts.items() if n >= min_count}
    parts: list[tuple[Mapping[int, float], float]] = []
    if seen:
        parts.append((seen, 1.0 - list_share if listed else 1.0))
    sources: dict[str, Any] = {"text": {**text_source, "share": parts[0][1] if parts else 0.0}}
    if listed:
        counts, described = listed
        parts.append((counts, list_share if seen else 1.0))
        sources["word_list"] = {**described, "share": parts[-1][1]}
    shares: dict[int, float] = {}
    for counts, weight in parts:
        total = sum(counts.values())
        for token, n in counts.items():
            shares[token] = shares.get(token, 0.0) + weight * n / total
    return LanguageFrequencies(shares, sources)


def rank_tokens(
    languages: Mapping[str, LanguageFrequencies],
    weights: Mapping[str, float],
    coverage: float | None = None,
) -> list[int]:
    """Tokens in the order they join the vocabulary: by the languages' weighted mixture of shares (so each
    language gets the part of the budget its weight gives it, whatever the size of its text).

    ``coverage``: only the tokens needed for each language to reach that share of its own occurrences (the most
    frequent of its tokens first), still in mixture order.
    """
    total = sum(weights.values())
    score: dict[int, float] = {}
    for lang, frequencies in languages.items():
        weight = weights[lang] / total
        for token, share in frequencies.shares.items():
            score[token] = score.get(token, 0.0) + weight * share
    candidates: set[int] | None = None
    if coverage is not None:
        candidates = set()
        for frequencies in languages.values():
            candidates.update(_smallest_covering(frequencies.shares, coverage))
    chosen = score if candidates is None else {t: score[t] for t in candidates}
    return [token for token, _ in sorted(chosen.items(), key=lambda item: (-item[1], item[0]))]


def _smallest_covering(shares: Mapping[int, float], coverage: float) -> list[int]:
    covered, taken = 0.0, []
    for token, share in sorted(shares.items(), key=lambda item: (-item[1], item[0])):
        if covered >= coverage - 1e-9:  # shares are sums of floats: 0.6 + 0.3 covers 0.9
            break
        taken.append(token)
        covered += share
    return taken


def parse_weights(langs: Sequence[str], weights: Sequence[float] | None) -> dict[str, float]:
    """Each language's weight (equal shares when none are given)."""
    if weights is None:
        return {lang: 1.0 for lang in langs}
    if len(weights) != len(langs) or any(w <= 0 for w in weights):
        raise VocabSizeError("every vocabulary language needs a positive weight, e.g. --langs en:2,sw:1")
    return dict(zip(langs, weights))
