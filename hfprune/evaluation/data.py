"""Finding and reading evaluation files in the data folder (``--data DIR``, default the shared one).

The layout is ``{task}/{lang}.{split}.jsonl`` and ``flores/{lang}.devtest.txt``; ``manifest.json``
lists what the bundle should hold, so a file that the manifest names but the disk lacks is reported
as missing rather than as a language the data does not have.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from hfprune.constants import DATA_DIR_ENV, default_data_dir
from hfprune.errors import DataFileMissingError, DataSourceError
from hfprune.io import sha256_file


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir`` if given, else the default data folder; raise if it does not exist."""
    path = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if path is None:
        raise DataFileMissingError(
            f"no evaluation data folder found; pass --data DIR or set {DATA_DIR_ENV} "
            "(or use --hub-data to fetch the tasks with `datasets`)"
        )
    if not path.is_dir():
        raise DataFileMissingError(f"the data folder {path} does not exist; pass --data with an existing folder")
    return path


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


def require_file(data_dir: Path, relative: str) -> Path:
    """The file at ``data_dir/relative``; raise naming it when it is missing."""
    path = data_dir / relative
    if not path.is_file():
        raise DataFileMissingError(
            f"the data folder is missing {relative} (expected at {path}); restore it or pass another --data"
        )
    return path


def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per non-empty line."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataSourceError(
                    f"{path}, line {number}, is not valid JSON ({error.msg}); fix or replace the file"
                ) from error
    return rows


@lru_cache(maxsize=256)
def file_sha256(path: Path) -> str:
    """Hex sha256 of a data file, recorded in results so a number can be traced to its data (cached: the same
    file is hashed once per process however many tasks read it)."""
    return sha256_file(path)
