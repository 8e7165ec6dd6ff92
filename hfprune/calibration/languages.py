"""Language codes: validate what users type and match it against the languages a source holds.

Users write ISO 639-1 (``sw``), ISO 639-3 (``swa``) or BCP 47 tags with a script (``zh-Hans``); data folders
name files by ISO 639-1. We normalise both sides with ``langcodes`` so ``swa`` finds ``sw.txt``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import langcodes

from ..errors import UnknownLanguageError


def normalize(code: str) -> str:
    """The canonical BCP 47 form of ``code`` (``swa`` -> ``sw``, ``zh-hans`` -> ``zh-Hans``).

    Raises:
        UnknownLanguageError: ``code`` is not a valid language tag.
    """
    raw = code.strip()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            valid = langcodes.tag_is_valid(raw) and langcodes.Language.get(raw).is_valid()
            tag = langcodes.standardize_tag(raw) if valid else ""
    except (ValueError, langcodes.tag_parser.LanguageTagError):
        valid, tag = False, ""
    if not valid or not langcodes.Language.get(tag).language or tag == "und":
        raise UnknownLanguageError(
            f"'{code}' is not a language code; use ISO 639-1 or 639-3 (e.g. 'sw' or 'swa'), "
            "optionally with a script ('zh-Hans')"
        )
    return tag


def base_language(code: str) -> str:
    """The bare language of a code (``zh-Hans`` -> ``zh``, ``swa`` -> ``sw``): how most Hub corpora name configs."""
    return str(langcodes.Language.get(normalize(code)).language)


def display_name(code: str) -> str:
    """A human name for a code, for tables ("Swahili")."""
    return langcodes.Language.get(code).display_name()


def match(code: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that holds text for ``code``, or ``None``.

    An exact (normalised) match wins; otherwise a file for the bare language serves a tag with a script
    (``zh-Hans`` -> ``zh``) and vice versa, because most corpora key files by language alone.
    """
    wanted = normalize(code)
    by_norm: dict[str, str] = {}
    for name in available:
        try:
            by_norm.setdefault(normalize(name), name)
        except UnknownLanguageError:
            continue
    if wanted in by_norm:
        return by_norm[wanted]
    base = langcodes.Language.get(wanted).language
    same_base = [norm for norm in by_norm if langcodes.Language.get(norm).language == base]
    return by_norm[sorted(same_base)[0]] if len(same_base) == 1 else None
