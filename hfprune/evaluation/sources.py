"""Where perplexity text comes from: FLORES in the data folder, a folder of ``{lang}.txt``, or a Hub dataset.

A source is written as one string so the CLI takes it as one option:

- ``flores`` (default): ``{data}/flores/{lang}.devtest.txt``, parallel across languages;
- a folder path: ``{folder}/{lang}.txt``;
- ``hf:ID[:CONFIG[:SPLIT[:COLUMN]]]``: a ``datasets`` id; ``{lang}`` in CONFIG is replaced by the language
  (defaults: CONFIG ``{lang}``, SPLIT ``test``, COLUMN ``text``).

Each line (or row) is a sentence; ``limit`` keeps the first N of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hfprune.errors import DataSourceError, EmptyTextError
from hfprune.evaluation.data import file_sha256

FLORES = "flores"


@dataclass(frozen=True)
class LoadedText:
    """One language's document and its provenance."""

    text: str
    source: str
    sha256: str | None


@dataclass(frozen=True)
class TextSource:
    """A parsed source specification (see the module docstring)."""

    spec: str = FLORES

    @property
    def kind(self) -> str:
        if self.spec == FLORES:
            return "flores"
        return "hub" if self.spec.startswith("hf:") else "folder"

    def languages(self, data_dir: Path | None) -> list[str]:
        """Languages this source has locally (Hub sources cannot be listed offline: empty)."""
        folder, pattern = self._folder(data_dir)
        if folder is None or not folder.is_dir():
            return []
        return sorted(p.name.split(".")[0] for p in folder.glob(pattern))

    def load(self, lang: str, data_dir: Path | None, limit: int | None = None) -> LoadedText | None:
        """The document for ``lang``, or ``None`` when the source has no such language."""
        if self.kind == "hub":
            return self._load_hub(lang, limit)
        folder, pattern = self._folder(data_dir)
        if folder is None or not folder.is_dir():
            raise DataSourceError(
                f"the perplexity source folder {folder} does not exist; pass --ppl-source with an existing folder"
            )
        path = folder / pattern.replace("*", lang)
        if not path.is_file():
            return None
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise EmptyTextError(f"{path} is empty; put text in it or drop language {lang!r}")
        text = "\n".join(lines[:limit] if limit is not None else lines)
        return LoadedText(text=text, source=str(path), sha256=file_sha256(path))

    def _folder(self, data_dir: Path | None) -> tuple[Path | None, str]:
        if self.kind == "flores":
            return (data_dir / "flores" if data_dir is not None else None), "*.devtest.txt"
        return Path(self.spec).expanduser(), "*.txt"

    def _load_hub(self, lang: str, limit: int | None) -> LoadedText:
        import datasets

        parts = self.spec[len("hf:") :].split(":")
        dataset_id, config, split, column = (parts + ["{lang}", "test", "text"][len(parts) - 1 :])[:4]
        config = config.replace("{lang}", lang)
        try:
            rows = datasets.load_dataset(dataset_id, config, split=split if limit is None else f"{split}[:{limit}]")
            lines = [str(row[column]) for row in rows if str(row[column]).strip()]
        except Exception as error:  # network, unknown config, missing column ...
            raise DataSourceError(
                f"could not read {dataset_id} ({config}, {split}, column {column!r}): {error}"
            ) from error
        if not lines:
            raise EmptyTextError(f"{dataset_id} ({config}, {split}) has no text in column {column!r}")
        return LoadedText(text="\n".join(lines), source=f"hf://datasets/{dataset_id}/{config}@{split}", sha256=None)
