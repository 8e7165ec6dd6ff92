"""Finding and reading evaluation files in the order of sources (see :mod:`hfprune.data_sources`).

The layout is ``{task}/{lang}.{split}.jsonl`` and ``flores/{lang}.devtest.txt``; a folder's ``manifest.json``
lists what it should hold, so a file that the manifest names but the disk lacks is reported as missing rather
than as a language the data does not have.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..data_sources import DataRoot, data_roots
from ..errors import DataFileMissingError, DataSourceError
from ..io import read_text_file, sha256_file

#: The flag that names an evaluation data folder (``--data`` is its older spelling).
EVAL_SOURCE_FLAG = "--eval-source"


def resolve_roots(data_dir: str | Path | DataRoot | tuple[DataRoot, ...] | None = None) -> tuple[DataRoot, ...]:
    """The data folders evaluation reads, in order: ``data_dir`` alone if given, else ``$HFPRUNE_DATA_DIR`` and
    the data shipped with hfprune.

    Raises:
        DataFolderError: the named folder does not exist.
    """
    if isinstance(data_dir, tuple):
        return data_dir
    if isinstance(data_dir, DataRoot):
        return (data_dir,)
    return data_roots(data_dir, flag=EVAL_SOURCE_FLAG)


def manifest_files(data_dir: Path) -> set[str]:
    """Relative paths that ``manifest.json`` says the folder holds (empty without a manifest)."""
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        return set()
    entries = json.loads(manifest.read_text(encoding="utf-8"))
    files = entries.get("files", entries) if isinstance(entries, dict) else entries
    if isinstance(files, dict):
        return set(files)
    return {entry["file"] for entry in files if isinstance(entry, dict) and "file" in entry}


def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per non-empty line."""
    rows = []
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataSourceError(
                f"{path}, line {number}, is not valid JSON ({error.msg}); fix or replace the file"
            ) from error
        if not isinstance(row, dict):
            raise DataSourceError(f"{path}, line {number}, is not a JSON object; fix or replace the file")
        rows.append(row)
    return rows


def raise_if_listed_but_missing(roots: tuple[DataRoot, ...], relative: str) -> None:
    """Raise when a folder's manifest lists ``relative`` but the file is gone: the folder is broken."""
    for root in roots:
        if relative in manifest_files(root.path) and root.find(relative) is None:
            raise DataFileMissingError(
                f"{root.label()} is missing {relative} (listed in its manifest.json); restore it"
                + (" (reinstall hfprune)" if root.name == "shipped" else "")
            )


@lru_cache(maxsize=256)
def file_sha256(path: Path) -> str:
    """Hex sha256 of a data file, recorded in results so a number can be traced to its data (cached: the same
    file is hashed once per process however many tasks read it)."""
    return sha256_file(path)
