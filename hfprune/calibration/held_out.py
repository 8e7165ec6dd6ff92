"""Held-out text: the sentences on which hfprune measures what a change cost (the trimmed vocabulary's check,
healing's before/after, an export's verification), never calibration or healing text. By default the first
sentences of FLORES-200 devtest per language from the data folders; or a folder of ``{lang}.txt`` files.

One loader for every room, so each records its text the same way: per language the file by a name that may be
published (``shipped:flores/en.devtest.txt``, never this machine's path), the number of sentences and their
sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data_sources import data_roots
from ..io import portable_path
from .languages import match

#: The folder of each data root that holds FLORES-200 devtest (``{code}.devtest.txt``).
FLORES = "flores"


@dataclass
class HeldOut:
    """Held-out sentences per language, and the file each came from (a publishable name)."""

    sentences: dict[str, list[str]]
    files: dict[str, str]

    def missing(self, langs: Sequence[str]) -> list[str]:
        return [lang for lang in langs if lang not in self.sentences]

    def describe(self) -> dict[str, Any]:
        return {
            lang: {"file": self.files[lang], "sentences": len(lines), "sha256": _digest(lines)}
            for lang, lines in self.sentences.items()
        }


def available_languages(folder: Path) -> list[str]:
    """The language codes a held-out folder has files for (``en`` of ``en.devtest.txt`` or ``en.txt``)."""
    return sorted({path.name.split(".")[0] for path in folder.glob("*.txt")})


def flores_folders() -> list[tuple[str, Path]]:
    """``(record name, folder)`` of every data root's FLORES folder, in the order of :func:`data_roots`."""
    return [(f"{root.name}:{FLORES}", root.path / FLORES) for root in data_roots() if (root.path / FLORES).is_dir()]


def read_held_out(
    langs: Sequence[str], sentences: int | None, folders: Sequence[tuple[str, Path]] | None = None
) -> HeldOut:
    """The first ``sentences`` non-empty lines (all with ``None`` or 0) of each language, from the first of
    ``folders`` (default :func:`flores_folders`) that has its file; a language none has is left out (callers
    name it through :meth:`HeldOut.missing`)."""
    folders = flores_folders() if folders is None else folders
    found: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    for lang in langs:
        for name, folder in folders:
            key = match(lang, available_languages(folder))
            path = next(
                (p for p in (folder / f"{key}.devtest.txt", folder / f"{key}.txt") if key and p.is_file()), None
            )
            if path is None:
                continue
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            found[lang], files[lang] = (lines[:sentences] if sentences else lines), f"{name}/{path.name}"
            break
    return HeldOut(found, files)


def folder_entry(folder: Path) -> tuple[str, Path]:
    """A user's held-out folder as :func:`read_held_out` takes it, recorded by its own name only."""
    return portable_path(str(folder.resolve())), folder


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
