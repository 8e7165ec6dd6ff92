"""Checks before anything is uploaded: is this an hfprune output with a card, and does it hold no secret?

A published model is hard to take back, so a folder that hfprune did not produce, or that has no card, is
refused unless the user says ``--force``. A folder holding the user's own token is refused always.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..constants import CARD_FILE, METADATA_FILE
from ..errors import (
    MissingCardError,
    ModelNotFoundError,
    NotAPrunedFolderError,
    SecretInFolderError,
)
from ..io import read_json_object
from .manifest import published_files

_CHUNK = 1 << 20


def check_publishable(folder: Path, *, force: bool = False, token: str | None = None) -> dict[str, Any]:
    """Raise unless ``folder`` is a complete hfprune output; return its ``hfprune.json`` (``{}`` if forced).

    Every file that would be published is scanned for ``token`` (whatever its type or size, streamed), so a
    token pasted into a notebook, a pickle or a log beside the weights is caught before it leaves.

    Raises:
        ModelNotFoundError: the folder does not exist.
        LinkOutOfFolderError: a link in it leads out of it (even with ``force``).
        NotAPrunedFolderError: no readable ``hfprune.json`` (unless ``force``).
        MissingCardError: no ``README.md`` (unless ``force``).
        SecretInFolderError: the token is written in one of the files (even with ``force``).
    """
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder} is not a folder; pass the folder `hfprune prune` wrote (its --out)")
    published = published_files(folder)
    metadata = _read_metadata(folder, force)
    if not (folder / CARD_FILE).is_file() and not force:
        raise MissingCardError(
            f"{folder} has no model card (README.md). Write one with `hfprune card {folder}`, "
            "or pass --force to publish without a card"
        )
    if token:
        leaking = [name for name in published if file_contains(folder / name, token.encode())]
        if leaking:
            raise SecretInFolderError(
                f"your Hub token is written in {', '.join(leaking)} inside {folder}; remove it from those files "
                "(and revoke the token at https://huggingface.co/settings/tokens if it was shared) before pushing"
            )
    return metadata


def file_contains(path: Path, needle: bytes) -> bool:
    """Whether ``needle`` occurs in the file, read in chunks that overlap by ``len(needle) - 1`` bytes (a match
    across a chunk boundary is found; the file is never held whole)."""
    keep = len(needle) - 1
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-keep:] if keep else b""
    return False


def _read_metadata(folder: Path, force: bool) -> dict[str, Any]:
    try:
        return read_json_object(folder / METADATA_FILE)
    except ValueError as err:
        if force:
            return {}
        raise NotAPrunedFolderError(
            f"{err}, so {folder} does not look like an hfprune output. Produce it with `hfprune prune` "
            "(or `hfprune run`), or pass --force to publish it anyway"
        ) from err
