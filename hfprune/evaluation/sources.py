"""Where perplexity text comes from: FLORES in the order of sources, a folder of ``{lang}.txt``, or a Hub dataset.

A source is written as one string so the CLI takes it as one option:

- ``flores`` (default): ``flores/{lang}.devtest.txt`` of the first data folder that has it
  (:mod:`hfprune.data_sources`), parallel across languages; when no folder has the language and the machine is
  online, FLORES+ devtest from the Hub (``openlanguagedata/flores_plus``, gated: accept its terms on its page and
  ``hf auth login``);
- a folder path: ``{folder}/{lang}.txt``;
- ``hf:ID[:CONFIG[:SPLIT[:COLUMN]]]``: a ``datasets`` id; ``{lang}`` in CONFIG is replaced by the language
  (defaults: CONFIG ``{lang}``, SPLIT ``test``, COLUMN ``text``).

Each line (or row) is a sentence; ``limit`` keeps the first N of them. Provenance names a data folder by its
name (``shipped:flores/en.devtest.txt``), never by a path of this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data_sources import HUB_TEXT, DataRoot, find_file, online
from ..errors import DataSourceError, EmptyTextError
from ..io import read_text_file
from .data import file_sha256, raise_if_listed_but_missing
from .tasks import FLORES_CODES

FLORES = "flores"


@dataclass(frozen=True)
class LoadedText:
    """One language's document and its provenance."""

    text: str
    source: str
    sha256: str | None


@dataclass(frozen=True)
class PerplexitySource:
    """A parsed source specification (see the module docstring)."""

    spec: str = FLORES

    def __post_init__(self) -> None:
        folder = Path(self.spec).expanduser()
        if self.kind == "folder" and not folder.is_dir():
            what = "is a file" if folder.exists() else "does not exist"
            raise DataSourceError(
                f"the perplexity source {self.spec} {what}; pass --ppl-source a folder of {{lang}}.txt files, "
                "or hf:ID[:CONFIG[:SPLIT[:COLUMN]]]"
            )

    @property
    def kind(self) -> str:
        if self.spec == FLORES:
            return "flores"
        return "hub" if self.spec.startswith("hf:") else "folder"

    def languages(self, roots: tuple[DataRoot, ...], hub: bool | None = None) -> list[str]:
        """Languages this source has locally, and for FLORES those the Hub has when it may be asked (a ``hf:``
        source cannot be listed: empty)."""
        if self.kind == "hub":
            return []
        if self.kind == "flores":
            local = {p.name.split(".")[0] for root in roots for p in (root.path / FLORES).glob("*.devtest.txt")}
            return sorted(local | (set(FLORES_CODES) if (online() if hub is None else hub) else set()))
        folder = Path(self.spec).expanduser()
        return sorted(p.name.split(".")[0] for p in folder.glob("*.txt")) if folder.is_dir() else []

    def load(
        self, lang: str, roots: tuple[DataRoot, ...], limit: int | None = None, hub: bool | None = None
    ) -> LoadedText | None:
        """The document for ``lang``, or ``None`` when the source has no such language."""
        if self.kind == "hub":
            return self._load_hub(self.spec[len("hf:") :], lang, limit)
        if self.kind == "flores":
            return self._load_flores(lang, roots, limit, hub)
        folder = Path(self.spec).expanduser()
        if not folder.is_dir():
            raise DataSourceError(
                f"the perplexity source folder {folder} does not exist; pass --ppl-source with an existing folder"
            )
        path = folder / f"{lang}.txt"
        return _read_lines(path, f"{folder.name}/{path.name}", lang, limit) if path.is_file() else None

    def _load_flores(self, lang: str, roots: tuple[DataRoot, ...], limit: int | None, hub: bool | None):
        relative = f"{FLORES}/{lang}.devtest.txt"
        found = find_file(roots, relative)
        if found is not None:
            root, path = found
            return _read_lines(path, root.record(relative), lang, limit)
        raise_if_listed_but_missing(roots, relative)
        if (online() if hub is None else hub) and lang in FLORES_CODES:
            flores = HUB_TEXT["perplexity"]
            spec = f"{flores.dataset}:{FLORES_CODES[lang]}:{flores.split}:{flores.column}"
            return self._load_hub(spec, lang, limit, gated=True)
        return None

    def _load_hub(self, spec: str, lang: str, limit: int | None, gated: bool = False) -> LoadedText:
        import datasets

        parts = spec.split(":")
        dataset_id, config, split, column = (parts + ["{lang}", "test", "text"][len(parts) - 1 :])[:4]
        config = config.replace("{lang}", lang)
        try:
            rows = datasets.load_dataset(dataset_id, config, split=split if limit is None else f"{split}[:{limit}]")
            lines = [str(row[column]) for row in rows if str(row[column]).strip()]
        except Exception as error:  # network, unknown config, missing column, terms not accepted ...
            access = (
                f"; it is gated: accept its terms at https://huggingface.co/datasets/{dataset_id} and log in "
                "(`hf auth login` or HF_TOKEN), or pass --eval-source DIR with flores/{lang}.devtest.txt"
                if gated
                else ""
            )
            raise DataSourceError(
                f"could not read {dataset_id} ({config}, {split}, column {column!r}): {error}{access}"
            ) from error
        if not lines:
            raise EmptyTextError(f"{dataset_id} ({config}, {split}) has no text in column {column!r}")
        return LoadedText(text="\n".join(lines), source=f"hf://datasets/{dataset_id}/{config}@{split}", sha256=None)


def _read_lines(path: Path, record: str, lang: str, limit: int | None) -> LoadedText:
    lines = [line for line in read_text_file(path).splitlines() if line.strip()]
    if not lines:
        raise EmptyTextError(f"{path} is empty; put text in it or drop language {lang!r}")
    text = "\n".join(lines[:limit] if limit is not None else lines)
    return LoadedText(text=text, source=record, sha256=file_sha256(path))
