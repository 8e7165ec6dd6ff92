"""Where calibration text comes from: a folder of per-language files, a ``datasets`` dataset, or the default.

A source is anything with the three methods of :class:`TextSource` (a protocol, so users can bring their
own); :class:`SourceSpec` is how the user *names* one, opened only when a method needs text. The default
(:class:`DefaultSource`) follows hfprune's one order of sources (:mod:`hfprune.data_sources`): per language,
``$HFPRUNE_DATA_DIR/calib``, then the calibration text shipped with hfprune, then Wikipedia on the Hub when online.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..constants import DATA_DIR_ENV
from ..data_sources import HUB_TEXT, DataRoot, data_roots, offline_reason, online, tried
from ..errors import CalibrationSourceError
from ..io import read_text_file, sha256_file
from .languages import base_language, match


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

    Sub-folders one level down are read too, in sorted order, so a ``calib/`` folder with ``ntrex/``,
    ``xquad_wiki/`` and ``udhr/`` corpora (as shipped with hfprune) acts as one source per language.
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

    def paths(self, lang: str) -> list[Path]:
        """The files that hold ``lang``, in the order they are read."""
        return list(self._files[lang])

    def documents(self, lang: str, min_chars: int) -> list[str]:
        docs: list[str] = []
        for path in self._files[lang]:
            if path.suffix == ".txt":
                docs.extend(line for line in read_text_file(path).splitlines() if line.strip())
                continue
            for n, line in enumerate(read_text_file(path).splitlines(), 1):
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


class DefaultSource:
    """The calibration text hfprune uses when none is named: per language, the first folder of the order of
    sources that has it (``calib/`` of ``$HFPRUNE_DATA_DIR``, then of the shipped data), else Wikipedia through
    ``datasets`` when online.

    ``requested`` are the languages a mix asks for: those no folder has are listed too, so that reading them
    tries the Hub or fails with a message that names every source tried.
    """

    def __init__(self, roots: Sequence[DataRoot], requested: Sequence[str] = ()) -> None:
        self.roots = [root for root in roots if (root.path / "calib").is_dir()]
        self._folders = [(root, FolderSource(root.path / "calib")) for root in self.roots]
        local = sorted({lang for _, folder in self._folders for lang in folder.languages()})
        self._local = local
        self._extra = [lang for lang in dict.fromkeys(requested) if match(lang, local) is None]
        self._used: dict[str, dict[str, Any]] = {}
        self.hub = HUB_TEXT["calibration"]

    def languages(self) -> list[str]:
        return [*self._local, *self._extra]

    def documents(self, lang: str, min_chars: int) -> list[str]:
        for root, folder in self._folders:
            if lang in folder.languages():
                self._used[lang] = {"root": root.name, "files": _files_of(folder, lang)}
                return folder.documents(lang, min_chars)
        code = base_language(lang)  # Wikipedia's configs are named by the bare language ("zh", not "zh-Hans")
        hub = f"the Hub: {self.hub.describe().replace('{lang}', code)}"
        if not online():
            raise CalibrationSourceError(self._missing(lang, f"{hub}, {offline_reason()}"))
        dataset = DatasetSource(
            self.hub.dataset,
            langs=[lang],
            config_pattern=self.hub.config,
            split=self.hub.split,
            text_field=self.hub.column,
        )
        try:
            docs = dataset.documents(code, min_chars)
        except CalibrationSourceError as err:
            raise CalibrationSourceError(self._missing(lang, f"{hub}, which failed: {err}")) from err
        self._used[lang] = {"root": "hub", **dataset.describe()}
        return docs

    def describe(self) -> dict[str, Any]:
        files = {
            f"{used['root']}:{name}": digest
            for used in self._used.values()
            for name, digest in used.get("files", {}).items()
        }
        return {
            "kind": "default",
            "order": [root.name for root in self.roots] + [f"hub:{self.hub.dataset}"],
            "languages": self._used,
            "files": files,
        }

    def _missing(self, lang: str, hub: str) -> str:
        return (
            f"no calibration text for '{lang}': tried {tried(tuple(self.roots), hub)}. Pass --calib-source DIR "
            f"(a folder of {lang}.txt files) or a datasets id with a '{lang}' config, or set {DATA_DIR_ENV} "
            "to a folder with calib/<corpus>/" + f"{lang}.txt"
        )


def _files_of(folder: FolderSource, lang: str) -> dict[str, str]:
    return {str(p.relative_to(folder.root.parent)): sha256_file(p) for p in folder.paths(lang)}


def default_source(langs: Sequence[str] = ()) -> DefaultSource:
    """The default calibration text (see :class:`DefaultSource`), for a mix of ``langs`` when given."""
    return DefaultSource(data_roots(), requested=langs)


@dataclass(frozen=True)
class SourceSpec:
    """Where calibration text comes from, as the user names it: opened only when text is needed.

    ``location``: a folder, a ``datasets`` id (``hf://datasets/ID`` or a bare ``owner/name``), or ``None`` for the
    default calibration text (:class:`DefaultSource`). The other fields apply to a dataset (and ``text_field`` to ``.jsonl`` files).
    """

    location: str | None = None
    config_pattern: str = "{lang}"
    split: str = "train"
    text_field: str = "text"
    revision: str | None = None

    def open(self, langs: Sequence[str] = ()) -> TextSource:
        """The source; ``langs`` are the languages a dataset source will be asked for (it cannot list them)."""
        if self.location is None:
            return default_source(langs)
        text = str(self.location)
        if Path(text).expanduser().is_dir():
            return FolderSource(Path(text).expanduser(), text_field=self.text_field)
        if Path(text).expanduser().exists():  # a file is never taken for a dataset id
            raise CalibrationSourceError(
                f"calibration source {text} is a file; give the folder that holds it (a folder of {{lang}}.txt or "
                f"{{lang}}.jsonl files, e.g. --calib-source {Path(text).parent}), or a dataset id (owner/name)"
            )
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
            dataset_id,
            langs=langs,
            config_pattern=self.config_pattern,
            split=self.split,
            text_field=self.text_field,
            revision=self.revision,
        )


#: Everything the library accepts as a calibration source.
CalibrationSource = TextSource | SourceSpec | str | Path | None


def open_source(source: CalibrationSource = None, *, langs: Sequence[str] = (), **spec: Any) -> TextSource:
    """A :class:`TextSource` from whatever names one: a ready source, a :class:`SourceSpec`, a folder or dataset
    id (with ``spec`` fields such as ``config_pattern``), or ``None`` for the default text (:class:`DefaultSource`)."""
    if isinstance(source, TextSource):
        return source
    if isinstance(source, SourceSpec):
        return source.open(langs)
    return SourceSpec(None if source is None else str(source), **spec).open(langs)
