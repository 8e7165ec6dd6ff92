"""Checks before anything is uploaded: is this an hfprune output with a card, and does it hold no secret?

A published model is hard to take back, so a folder that hfprune did not produce, or that has no card, is
refused unless the user says ``--force``. A folder holding the user's own token is refused always.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..constants import CARD_FILE, METADATA_FILE
from ..errors import (
    MissingCardError,
    ModelNotFoundError,
    NotAPrunedFolderError,
    SecretInFolderError,
)

#: Text files larger than this are not scanned for a token (weights are never scanned: they are numbers).
_SCAN_LIMIT = 20 * 1024 * 1024
_BINARY_SUFFIXES = {".safetensors", ".bin", ".png", ".pt", ".pth", ".gguf"}


def check_publishable(folder: Path, *, force: bool = False, token: str | None = None) -> dict[str, Any]:
    """Raise unless ``folder`` is a complete hfprune output; return its ``hfprune.json`` (``{}`` if forced).

    Raises:
        ModelNotFoundError: the folder does not exist.
        NotAPrunedFolderError: no readable ``hfprune.json`` (unless ``force``).
        MissingCardError: no ``README.md`` (unless ``force``).
        SecretInFolderError: the token is written in one of the files (even with ``force``).
    """
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder} is not a folder; pass the folder `hfprune prune` wrote (its --out)")
    metadata = _read_metadata(folder, force)
    if not (folder / CARD_FILE).is_file() and not force:
        raise MissingCardError(
            f"{folder} has no model card (README.md). Write one with `hfprune card {folder}`, "
            "or pass --force to publish without a card"
        )
    if token:
        leaking = files_containing(folder, token)
        if leaking:
            raise SecretInFolderError(
                f"your Hub token is written in {', '.join(leaking)} inside {folder}; remove it from those files "
                "(and revoke the token at https://huggingface.co/settings/tokens if it was shared) before pushing"
            )
    return metadata


def files_containing(folder: Path, secret: str) -> list[str]:
    """Relative paths of the text files under ``folder`` that contain ``secret``."""
    needle = secret.encode()
    found = []
    for path in sorted(folder.rglob("*")):
        scannable = path.is_file() and path.suffix not in _BINARY_SUFFIXES and path.stat().st_size <= _SCAN_LIMIT
        if scannable and needle in path.read_bytes():
            found.append(path.relative_to(folder).as_posix())
    return found


def _read_metadata(folder: Path, force: bool) -> dict[str, Any]:
    path = folder / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        if force:
            return {}
        why = "is missing" if not path.exists() else f"cannot be read ({err})"
        raise NotAPrunedFolderError(
            f"{path} {why}, so {folder} does not look like an hfprune output. Produce it with `hfprune prune` "
            "(or `hfprune run`), or pass --force to publish it anyway"
        ) from err
