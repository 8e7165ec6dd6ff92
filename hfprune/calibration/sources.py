"""Where calibration text comes from: a folder of per-language files, a ``datasets`` dataset, or the shared corpora.

A source is anything with the three methods of :class:`TextSource` (a protocol, so users can bring their
own); :class:`SourceSpec` is how the user *names* one, opened only when a method needs text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..constants import DATA_DIR_ENV, default_data_dir
from ..errors import CalibrationSourceError
from ..io import sha256_file


@runtime_checkable
class TextSource(Protocol):
    """Where calibration text comes from: anything with these three methods serves."""

    def languages(self) -> list[str]:
        """Language keys this source can provide (as named by the source)."""

    def documents(self, lang: str, min_chars: int) -> list[str]:
        """Documents of ``lang`` (a source key), at least ``min_chars`` characters where available."""

    def describe(self) -> dict[str, Any]:
        """What to record so the calibration can be reproduced."""


class FolderSource:
    """A folder of ``{lang}.txt`` (one document per line) or ``{lang}.jsonl`` (a ``text`` field) files.

    Sub-folders one level down are read too, in sorted order, so ``shared/data/calib`` with its
    ``ntrex/``, ``xquad_wiki/`` and ``udhr/`` corpora acts as one source per language.
    """

    def __init__(self, root: Path, text_field: str = "text") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CalibrationSourceError(f"calibration folder {self.root} does not exist")
        self.text_field = text_field
        self._files: dict[str, list[Path]] = {}
        folders = [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]
        for folder in folders:
            for path in sorted(folder.iterdir()):
                if path.suffix in (".txt", ".jsonl") and path.is_file():
                    self._files.setdefault(path.stem, []).append(path)
        if not self._files:
            raise CalibrationSourceError(
                f"calibration folder {self.root} holds no {{lang}}.txt or {{lang}}.jsonl files"
            )

    def languages(self) -> list[str]:
        return sorted(self._files)

    def documents(self, lang: str, min_chars: int) -> list[str]:
        docs: list[str] = []
        for path in self._files[lang]:
            if path.suffix == ".txt":
                docs.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    docs.append(str(json.loads(line)[self.text_field]))
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise CalibrationSourceError(
                        f"{path}:{n}: expected a JSON object with a '{self.text_field}' field ({err})"
                    ) from err
        return docs

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "folder",
            "path": self.root.resolve().name,  # its name: a path of this machine is never recorded
            "files": {str(p.relative_to(self.root)): sha256_file(p) for files in self._files.values() for p in files},
        }


class DatasetSource:
    """A ``datasets`` dataset with one config per language (mC4, CulturaX, Wikipedia style).

    ``config_pattern`` names the config of a language (``"{lang}"``, ``"20231101.{lang}"``). The split
    is streamed and read only until enough text is there, so a multi-terabyte corpus costs a few MB.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        langs: Sequence[str],
        config_pattern: str = "{lang}",
        split: str = "train",
        text_field: str = "text",
        revision: str | None = None,
    ) -> None:
        self.dataset_id = dataset_id
        self._langs = list(langs)
        self.config_pattern = config_pattern
        self.split = split
        self.text_field = text_field
        self.revision = revision

    def languages(self) -> list[str]:
        return list(self._langs)

    def documents(self, lang: str, min_chars: int) -> list[str]:
        import datasets  # heavy import: only when this source is used

        config = self.config_pattern.format(lang=lang)
        try:
            stream = datasets.load_dataset(
                self.dataset_id, config, split=self.split, streaming=True, revision=self.revision
            )
        except Exception as err:  # datasets raises many types; all mean "this config is not there"
            raise CalibrationSourceError(
                f"cannot open dataset '{self.dataset_id}' config '{config}' split '{self.split}': {err}"
            ) from err
        docs: list[str] = []
        chars = 0
        for row in stream:
            text = row.get(self.text_field)
            if not text:
                continue
            docs.append(str(text))
            chars += len(docs[-1])
            if chars >= min_chars:
                break
        return docs

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "datasets",
            "dataset": self.dataset_id,
            "config_pattern": self.config_pattern,
            "split": self.split,
            "text_field": self.text_field,
            "revision": self.revision,
        }


_DATASET_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def default_source() -> FolderSource:
    """The calibration corpora shipped beside the project (``shared/data/calib``)."""
    data = default_data_dir()
    if data is None or not (data / "calib").is_dir():
        raise CalibrationSourceError(
            "no calibration source given and no shared data folder found; pass --calib-source DIR "
            f"(a folder of {{lang}}.txt files) or set {DATA_DIR_ENV}"
        )
    return FolderSource(data / "calib")


@dataclass(frozen=True)
class SourceSpec:
    """Where calibration text comes from, as the user names it: opened only when text is needed.

    ``location``: a folder, a ``datasets`` id (``hf://datasets/ID`` or a bare ``owner/name``), or ``None`` for the
    shared calibration corpora. The other fields apply to a dataset (and ``text_field`` to ``.jsonl`` files).
    """

    location: str | None = None
    config_pattern: str = "{lang}"
    split: str = "train"
    text_field: str = "text"
    revision: str | None = None

    def open(self, langs: Sequence[str] = ()) -> TextSource:
        """The source; ``langs`` are the languages a dataset source will be asked for (it cannot list them)."""
        if self.location is None:
            return default_source()
        text = str(self.location)
        if Path(text).expanduser().is_dir():
            return FolderSource(Path(text).expanduser(), text_field=self.text_field)
        dataset_id = text.removeprefix("hf://datasets/")
        if not _DATASET_ID.fullmatch(dataset_id):
            raise CalibrationSourceError(
                f"calibration source '{text}' is neither an existing folder nor a dataset id (owner/name)"
            )
        if not langs:
            raise CalibrationSourceError(
                f"a dataset source ('{dataset_id}') needs an explicit --calib mix: it cannot list its languages"
            )
        return DatasetSource(
            dataset_id, langs=langs, config_pattern=self.config_pattern, split=self.split,
            text_field=self.text_field, revision=self.revision,
        )  # fmt: skip


#: Everything the library accepts as a calibration source.
CalibrationSource = TextSource | SourceSpec | str | Path | None


def open_source(source: CalibrationSource = None, *, langs: Sequence[str] = (), **spec: Any) -> TextSource:
    """A :class:`TextSource` from whatever names one: a ready source, a :class:`SourceSpec`, a folder or dataset
    id (with ``spec`` fields such as ``config_pattern``), or ``None`` for the shared corpora."""
    if isinstance(source, TextSource):
        return source
    if isinstance(source, SourceSpec):
        return source.open(langs)
    return SourceSpec(None if source is None else str(source), **spec).open(langs)
