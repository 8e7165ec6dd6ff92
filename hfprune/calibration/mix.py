"""The calibration-language mix ``en:64,sw:64``: parsed once into a typed :class:`Mix`, then passed around.

The CLI parses ``--calib`` with :meth:`Mix.parse`; the library accepts a :class:`Mix` (or a string, parsed
here once); sampling takes only a :class:`Mix`. Nothing downstream re-reads the string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..constants import DEFAULT_TOTAL_SAMPLES
from ..errors import CalibrationMixError, CalibrationSourceError
from . import languages


@dataclass(frozen=True)
class MixEntry:
    language: str  # normalised BCP 47 tag
    samples: int


@dataclass(frozen=True)
class Mix:
    """Languages with their sample counts, in the order given; each language once."""

    entries: tuple[MixEntry, ...]

    @classmethod
    def parse(cls, spec: str | Mix | Sequence[MixEntry]) -> Mix:
        """Parse ``"en:64,sw:64"``, refusing anything ambiguous; a :class:`Mix` is returned as it is.

        Raises:
            CalibrationMixError: empty entries, missing or non-positive counts, a language given twice.
            UnknownLanguageError: a code that is not a language.
        """
        if isinstance(spec, Mix):
            return spec
        if not isinstance(spec, str):
            return cls(tuple(spec))
        return cls(tuple(_parse_entries(spec)))

    @classmethod
    def even(cls, langs: Sequence[str], total: int = DEFAULT_TOTAL_SAMPLES) -> Mix:
        """``total`` samples spread as evenly as possible over ``langs`` (sorted; the first get the remainder)."""
        ordered = sorted(langs)
        if not ordered:
            raise CalibrationSourceError("the calibration source holds no languages")
        base, extra = divmod(total, len(ordered))
        return cls(
            tuple(MixEntry(lang, base + (i < extra)) for i, lang in enumerate(ordered) if base + (i < extra) > 0)
        )

    def with_equal_weights(self) -> Mix:
        """The same languages with weight 1 each (healing text that follows a pruning mix)."""
        return Mix(tuple(MixEntry(entry.language, 1) for entry in self.entries))

    @property
    def languages(self) -> list[str]:
        return [entry.language for entry in self.entries]

    @property
    def total_samples(self) -> int:
        return sum(entry.samples for entry in self.entries)

    def __iter__(self) -> Iterator[MixEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __str__(self) -> str:
        return ",".join(f"{e.language}:{e.samples}" for e in self.entries)


def parse_mix(spec: str | Mix) -> Mix:
    """:meth:`Mix.parse`, as a function (the public name since the first release)."""
    return Mix.parse(spec)


def _parse_entries(spec: str) -> list[MixEntry]:
    entries: list[MixEntry] = []
    seen: dict[str, str] = {}
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise CalibrationMixError(f"calibration mix '{spec}' has an empty entry; write it as 'en:64,sw:64'")
    for part in parts:
        lang, sep, count = part.partition(":")
        if not sep or not lang.strip() or not count.strip():
            raise CalibrationMixError(f"calibration mix entry '{part}' must be LANG:N_SAMPLES, e.g. 'sw:64'")
        try:
            n = int(count)
        except ValueError:
            n = -1
        if n <= 0:
            raise CalibrationMixError(
                f"calibration mix entry '{part}': the number of samples must be a positive integer"
            )
        code = languages.normalize(lang)
        if code in seen:
            raise CalibrationMixError(
                f"calibration mix names {code} twice ('{seen[code]}' and '{part}'); give each language once"
            )
        seen[code] = part
        entries.append(MixEntry(code, n))
    return entries
