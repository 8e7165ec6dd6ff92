"""What a folder holds, file by file (size, sha256, git blob id), and the check that a remote copy matches it.

A push is only reported as published once every local file is on the remote with the same size and the same
content hash. LFS files are compared by sha256 (the Hub stores it); small files kept in git directly are
compared by their git blob id, which is itself a hash of the content (the Hub lists it, not the sha256).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import LinkOutOfFolderError, PushVerificationError
from ..io import file_digests


@dataclass(frozen=True)
class FileEntry:
    """One file: its size and content hashes (``None`` when the remote does not say)."""

    size: int
    sha256: str | None = None
    git_blob_id: str | None = None


def local_manifest(folder: str | Path) -> dict[str, FileEntry]:
    """Every file a push publishes (:func:`published_files`) with its size and hashes."""
    root = Path(folder)
    return {name: hash_file(root / name) for name in published_files(root)}


def published_files(folder: Path) -> list[str]:
    """What a push publishes: every file under ``folder`` (posix relative paths), skipping dot-files such as
    hfprune's records and temp files. A link is published as the file it points at only when that file is
    inside the folder; one that leads out of it (or to a folder, or nowhere) is refused, so a push never
    publishes what the user did not put in the folder.

    Raises:
        LinkOutOfFolderError: naming every such link.
    """
    root = folder.resolve()
    names, escaping = [], []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            target = path.resolve()
            if not target.is_file() or not target.is_relative_to(root):
                escaping.append(f"{relative.as_posix()} -> {os.readlink(path)}")
                continue
        if path.is_file():
            names.append(relative.as_posix())
    if escaping:
        raise LinkOutOfFolderError(
            f"{folder} holds links that lead out of it ({', '.join(escaping)}); a push publishes only the "
            "folder's own files: replace each link by a copy of the file, or remove it"
        )
    return names


def hash_file(path: Path) -> FileEntry:
    """Size, sha256 and git blob id in one read."""
    size, sha256, blob = file_digests(path, git_blob=True)
    return FileEntry(size=size, sha256=sha256, git_blob_id=blob)


#: Files the Hub keeps in every repo whatever is pushed (LFS rules); never deleted, never a difference.
REMOTE_ONLY = frozenset({".gitattributes"})


def stale_files(local: dict[str, FileEntry], remote: dict[str, FileEntry]) -> list[str]:
    """Remote files the folder does not have: a push deletes them so the repo equals the folder."""
    return sorted(path for path in remote if path not in local and path not in REMOTE_ONLY)


def mismatches(local: dict[str, FileEntry], remote: dict[str, FileEntry]) -> list[str]:
    """Human-readable differences in both directions: local files missing remotely or with another size or
    hash, and remote files the folder does not have (except :data:`REMOTE_ONLY`)."""
    problems = [f"{path}: on the remote but not in the folder" for path in stale_files(local, remote)]
    for path, mine in sorted(local.items()):
        theirs = remote.get(path)
        if theirs is None:
            problems.append(f"{path}: missing on the remote")
        elif theirs.size != mine.size:
            problems.append(f"{path}: {theirs.size} bytes on the remote, {mine.size} locally")
        elif theirs.sha256 is not None and theirs.sha256 != mine.sha256:
            problems.append(f"{path}: sha256 differs ({theirs.sha256[:12]} on the remote, {mine.sha256[:12]} locally)")
        elif theirs.sha256 is None and theirs.git_blob_id not in (None, mine.git_blob_id):
            problems.append(f"{path}: content differs (git blob {theirs.git_blob_id[:12]} on the remote)")
        elif theirs.sha256 is None and theirs.git_blob_id is None:
            problems.append(f"{path}: the remote gives no hash to compare")
    return problems


def require_identical(local: dict[str, FileEntry], remote: dict[str, FileEntry], repo_id: str, commit: str) -> None:
    """Raise unless the remote at ``commit`` holds exactly the folder's files, with the same sizes and hashes."""
    problems = mismatches(local, remote)
    if problems:
        listed = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise PushVerificationError(
            f"commit {commit[:12]} on '{repo_id}' does not match the local folder: {listed}. Run the push again; "
            "if it keeps failing, compare the files on the repo page"
        )
