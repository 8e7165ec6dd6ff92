"""A Hub repository kept on disk in the layout Hub mirrors use, so a push can target a folder instead of the Hub.

``<root>/models/<owner>/<name>`` is a git repository; large and binary files are committed as git-LFS
pointers with their bytes under ``.git/lfs/objects/aa/bb/<sha256>``, as on huggingface.co. A mirror server
(olah, for one) serves such a folder to ``huggingface_hub`` and ``transformers`` unchanged, and the test
suite's Hub write emulator commits into it through the same functions. Commits are built with git plumbing
(a private index, ``commit-tree``, compare-and-swap ``update-ref``) so the working copy is never touched and a
commit either lands whole or not at all. Needs the ``git`` executable; no git-lfs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidBranchError, LocalHubError
from ..io import process_alive
from .manifest import FileEntry, hash_file

#: Stored through LFS whatever their size, like the Hub's default ``.gitattributes``.
LFS_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.npy",
    "*.npz",
    "*.gguf",
    "*.tar",
    "*.tar.*",
    "*.gz",
    "*.zip",
    "*.zst",
    "*.parquet",
    "*.arrow",
    "*.model",
    "*.png",
)
#: Files at least this large go through LFS, as the Hub's preupload decides.
LFS_MIN_SIZE = 10 * 1024 * 1024
_POINTER = re.compile(r"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "hfprune",
    "GIT_AUTHOR_EMAIL": "hfprune@localhost",
    "GIT_COMMITTER_NAME": "hfprune",
    "GIT_COMMITTER_EMAIL": "hfprune@localhost",
}


@dataclass(frozen=True)
class LfsPointer:
    """A file whose bytes already sit in the repo's LFS store."""

    oid: str
    size: int


def repo_dir(root: str | Path, repo_id: str) -> Path:
    """Where ``repo_id`` lives under ``root``."""
    return Path(root) / "models" / repo_id


def uses_lfs(path: str, size: int, sample: bytes) -> bool:
    """Whether the Hub would store this file through LFS: known binary types, large files, binary content."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in LFS_PATTERNS) or size >= LFS_MIN_SIZE or b"\0" in sample


def lfs_pointer(oid: str, size: int) -> bytes:
    """The text git-lfs commits in place of a large file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def init_repo(repo: Path) -> str:
    """Create an empty repository whose first commit holds ``.gitattributes``, as the Hub does; return it."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    attributes = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
    return commit(repo, {".gitattributes": attributes.encode()}, message="initial commit")


def lfs_object_path(repo: Path, oid: str) -> Path:
    return repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def store_lfs_object(repo: Path, source: Path | bytes, oid: str | None = None) -> LfsPointer:
    """Copy bytes into the LFS store (atomically, idempotent) and return their pointer.

    The copy goes through a temporary file named after this process that is removed on any error or
    interrupt (a killed push's is removed by the next one), and its sha256 is checked against ``oid`` on the
    way, so a file that changed since it was hashed is never stored under the old hash.
    """
    data_path = source if isinstance(source, Path) else None
    if oid is None:
        oid = hash_file(data_path).sha256 if data_path else hashlib.sha256(source).hexdigest()
    target = lfs_object_path(repo, oid)
    size = data_path.stat().st_size if data_path else len(source)
    if target.is_file():
        return LfsPointer(oid, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_incoming(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".incoming-{os.getpid()}-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            if data_path is None:
                out.write(source)
                digest.update(source)
            else:
                with data_path.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
        if digest.hexdigest() != oid:
            raise LocalHubError(
                f"{data_path} changed while it was being published (its sha256 is no longer {oid[:12]}); "
                "nothing was committed: wait until nothing writes to the folder, then push again"
            )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return LfsPointer(oid, size)


def _remove_dead_incoming(folder: Path) -> None:
    """Remove the temporary copies that pushes killed outright left (their process is gone)."""
    for leftover in folder.glob(".incoming-*-*"):
        pid = leftover.name.split("-")[1]
        if pid.isdigit() and not process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def check_branch_name(branch: str) -> None:
    """Refuse a branch name git can never accept (``a..b``, ``x.lock``, a space, ...) before any work."""
    try:
        done = subprocess.run(
            ["git", "check-ref-format", "--branch", branch], capture_output=True, text=True, env=_env()
        )
    except FileNotFoundError as err:
        raise LocalHubError(
            "publishing to a local folder needs the `git` executable; install git and run again"
        ) from err
    if done.returncode != 0:
        raise InvalidBranchError(
            f"{branch!r} is not a branch name git accepts (see `git check-ref-format`: no spaces, '..', '~', '^', "
            "':', a leading '-' or a trailing '.lock'); choose another --revision"
        )


def resolve(repo: Path, revision: str) -> str | None:
    """The commit a branch, tag or hash points at; ``None`` when there is none."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
    return done.strip() or None


def commit(
    repo: Path,
    files: Mapping[str, bytes | LfsPointer],
    *,
    message: str,
    description: str = "",
    branch: str = "main",
    ref: str | None = None,
    parent: str | None = None,
    deletions: tuple[str, ...] = (),
) -> str:
    """Commit ``files`` (raw bytes, or pointers to stored LFS objects) on top of ``parent`` and move the ref.

    Args:
        files: path in repo -> content; unchanged paths keep their current content.
        branch: the branch to advance (``ref`` overrides it with a full ref such as ``refs/pr/1``).
        parent: the commit to build on; default the branch's tip (none for a new branch).
        deletions: paths to remove; a path ending in ``/`` removes a folder.

    Raises:
        LocalHubError: the ref moved while the commit was built (somebody else committed first).
    """
    full_ref = ref or f"refs/heads/{branch}"
    current = resolve(repo, full_ref)
    parent = parent or current
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent:
            _git(repo, "read-tree", parent, env=env)
        for path in deletions:
            for listed in _git(repo, "ls-files", "--", path.rstrip("/"), env=env).splitlines():
                _git(repo, "update-index", "--force-remove", "--", listed, env=env)
        for path, content in files.items():
            blob = lfs_pointer(content.oid, content.size) if isinstance(content, LfsPointer) else content
            sha = _git(repo, "hash-object", "-w", "--stdin", stdin=blob).strip()
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", env=env)
        tree = _git(repo, "write-tree", env=env).strip()
    text = message + (f"\n\n{description}" if description else "")
    new = _git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), stdin=text.encode()).strip()
    moved = subprocess.run(
        ["git", "update-ref", full_ref, new, current or "0" * 40], cwd=repo, env=_env(), capture_output=True, text=True
    )
    if moved.returncode != 0:
        if resolve(repo, full_ref) != current:
            raise LocalHubError(f"{full_ref} of {repo} moved while committing; nothing was changed. Run again")
        raise LocalHubError(f"git could not move {full_ref} in {repo}: {moved.stderr.strip()}; nothing was changed")
    return new


def tree_manifest(repo: Path, revision: str) -> dict[str, FileEntry]:
    """Every file of a commit with its real size and hash (LFS pointers resolved to the object they name)."""
    files = {}
    for line in _git(repo, "ls-tree", "-r", "-l", "-z", revision).split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        _mode, _kind, blob_id, size = meta.split()
        pointer = _parse_pointer(repo, blob_id) if 120 < int(size) < 200 else None
        if pointer is not None:
            files[path] = FileEntry(size=pointer.size, sha256=pointer.oid)
        else:
            files[path] = FileEntry(size=int(size), git_blob_id=blob_id)
    return files


def read_blob(repo: Path, revision: str, path: str) -> bytes:
    """The git content of a path at a revision (an LFS pointer for LFS files)."""
    return _git_bytes(repo, "cat-file", "blob", f"{revision}:{path}")


def _parse_pointer(repo: Path, blob_id: str) -> LfsPointer | None:
    match = _POINTER.fullmatch(_git_bytes(repo, "cat-file", "blob", blob_id).decode("utf-8", "replace"))
    return LfsPointer(match.group(1), int(match.group(2))) if match else None


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # No user config, hooks or filters from the machine: a plain, reproducible git.
    return {**os.environ, **_IDENTITY, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", **(extra or {})}


def _git(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None, check: bool = True
) -> str:
    return _git_bytes(repo, *args, env=env, stdin=stdin, check=check).decode()


def _git_bytes(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None, check: bool = True
) -> bytes:
    if shutil.which("git") is None:
        raise LocalHubError("publishing to a local folder needs the `git` executable; install git and run again")
    done = subprocess.run(["git", *args], cwd=repo, env=_env(env), input=stdin, capture_output=True)
    if check and done.returncode != 0:
        raise LocalHubError(f"git {args[0]} failed in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
