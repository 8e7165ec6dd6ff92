"""Unicode scripts: which scripts a language is written in, and whether a token is written only in some scripts.

A language's script comes from its tag (``zh-Hant``) or, without one, from CLDR's likely subtags (``hi`` ->
Devanagari, ``ja`` -> Han + Hiragana + Katakana) as ``langcodes`` ships them. Characters of Unicode's *Common*
(digits, punctuation, spaces, symbols) and *Inherited* (combining marks, zero-width joiners) scripts belong to
every language. Python's ``unicodedata`` has no Script property; the ``regex`` package's ``\\p{Script=...}`` does.

Byte-level tokens can hold part of a character (a CJK character is three bytes and a merge may stop inside
it). Such a fragment is judged generously: it passes when *some* character of the allowed scripts starts (or
continues) with those bytes. Keeping a few fragments too many is harmless; dropping one that text of the kept
scripts needs would change its tokenization.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import lru_cache

import langcodes
import regex
from langcodes.data_dicts import LIKELY_SUBTAGS

from ..calibration import normalize
from ..errors import UnknownScriptError

#: ISO 15924 codes of writing systems that combine several Unicode scripts.
COMPOSITE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "Hans": ("Hani",),
    "Hant": ("Hani",),
    "Hanb": ("Hani", "Bopo"),
    "Jpan": ("Hani", "Hira", "Kana"),
    "Kore": ("Hang", "Hani"),
    "Zyyy": (),
    "Zinh": (),
}
#: Scripts every language uses: Common and Inherited.
SHARED_SCRIPTS = ("Zyyy", "Zinh")


def language_scripts(lang: str) -> tuple[str, ...]:
    """The Unicode scripts (ISO 15924 codes) ``lang`` is written in, without Common and Inherited.

    Raises:
        UnknownLanguageError: ``lang`` is not a language tag.
        UnknownScriptError: neither the tag nor CLDR's likely subtags name a script for it.
    """
    tag = langcodes.Language.get(normalize(lang))
    script = tag.script
    if not script:
        likely = LIKELY_SUBTAGS.get(tag.language or "")
        script = langcodes.Language.get(likely).script if likely else None
    if not script:
        raise UnknownScriptError(
            f"the script of '{lang}' is not known; add it to the language code (e.g. '{tag.language}-Latn') or drop "
            "--vocab-scripts for this run"
        )
    scripts = COMPOSITE_SCRIPTS.get(script, (script,))
    for name in scripts:
        try:
            regex.compile(rf"\p{{Script={name}}}")
        except regex.error:
            raise UnknownScriptError(
                f"'{lang}' is written in {script}, which is not a Unicode script this Python's regex knows"
            ) from None
    return scripts


class ScriptFilter:
    """Decides whether a token's bytes are written only in the given scripts (plus Common and Inherited)."""

    def __init__(self, scripts: Iterable[str]) -> None:
        self.scripts = tuple(sorted(set(scripts) | set(SHARED_SCRIPTS)))
        self._heads, self._continuations = _fragments(self.scripts)
        self._allowed = regex.compile(_class(self.scripts) + "*")

    def allows_text(self, text: str) -> bool:
        return self._allowed.fullmatch(text) is not None

    def allows_bytes(self, data: bytes) -> bool:
        """Whole characters must be in the scripts; a cut character at either end must be one of theirs."""
        start = 0
        while start < len(data) and start < 3 and _is_continuation(data[start]):
            start += 1
        if start and data[:start] not in self._continuations:
            return False
        end = len(data)
        cut = _incomplete_tail(data, start)
        if cut is not None:
            if data[cut:] not in self._heads:
                return False
            end = cut
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        return self.allows_text(text)


def _class(scripts: Iterable[str]) -> str:
    return "[" + "".join(rf"\p{{Script={name}}}" for name in scripts) + "]"


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def _incomplete_tail(data: bytes, start: int) -> int | None:
    """Where a last character that is missing continuation bytes starts, or ``None`` when it is complete."""
    trailing = 0
    for index in range(len(data) - 1, start - 1, -1):
        byte = data[index]
        if _is_continuation(byte):
            trailing += 1
            continue
        needs = 3 if byte >= 0xF0 else 2 if byte >= 0xE0 else 1 if byte >= 0xC0 else 0
        return index if trailing < needs else None
    return None


@lru_cache(maxsize=16)
def _fragments(scripts: tuple[str, ...]) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """UTF-8 fragments of the scripts' characters: proper prefixes (a lead byte and some continuation bytes),
    and runs of continuation bytes (what a token that starts inside a character can begin with)."""
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    heads: set[bytes] = set()
    continuations: set[bytes] = set()
    for char in regex.findall(_class(scripts), everything):
        data = char.encode("utf-8")
        for cut in range(1, len(data)):
            heads.add(data[:cut])
            for end in range(cut + 1, len(data) + 1):
                continuations.add(data[cut:end])
    return frozenset(heads), frozenset(continuations)
