"""``push`` to a folder instead of huggingface.co: the same files, one commit, the same verification.

Used by the README demo, which must run without Hub access: the result is a repository in the layout Hub
mirrors serve (see :mod:`hfprune.hub.local`), so it can be inspected with git, served by a mirror
such as olah, and published later with ``hfprune push`` unchanged.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub

from ..errors import LocalHubError
from ..repo_id import check_repo_id
from . import local as local_hub
from .manifest import local_manifest, mismatches, require_identical, stale_files
from .preflight import check_publishable
from .push import PushResult, default_commit_message


def push_to_local_hub(
    folder: str | Path,
    root: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    commit_message: str | None = None,
    force: bool = False,
) -> PushResult:
    """Make ``<root>/models/<repo_id>`` on ``revision`` hold exactly the files of ``folder``, in one commit
    (stale files deleted), and verify it both ways.

    Raises:
        NotAPrunedFolderError, MissingCardError, LinkOutOfFolderError, SecretInFolderError (the user's token,
        ``HF_TOKEN`` or the saved one, is in a file: a local repo is published later), InvalidRepoIdError,
        PushVerificationError, LocalHubError.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    local_hub.check_branch_name(revision or "main")
    if Path(root).exists() and not Path(root).is_dir():
        raise LocalHubError(f"--local-hub {root} is a file; give a folder (it is created if missing)")
    metadata = check_publishable(folder, force=force, token=huggingface_hub.get_token())
    files = local_manifest(folder)
    repo = local_hub.repo_dir(root, repo_id).absolute()
    if not (repo / ".git").is_dir():
        local_hub.init_repo(repo)
    contents: dict[str, bytes | local_hub.LfsPointer] = {}
    for path, entry in files.items():
        source = folder / path
        with source.open("rb") as handle:
            sample = handle.read(512)
        if local_hub.uses_lfs(path, entry.size, sample):
            contents[path] = local_hub.store_lfs_object(repo, source, oid=entry.sha256)
        else:
            contents[path] = source.read_bytes()
    branch = revision or "main"
    parent = local_hub.resolve(repo, f"refs/heads/{branch}") or local_hub.resolve(repo, "refs/heads/main")
    removed = stale_files(files, local_hub.tree_manifest(repo, parent)) if parent else []
    commit = local_hub.commit(
        repo,
        contents,
        message=commit_message or default_commit_message(metadata),
        branch=branch,
        parent=parent,
        deletions=tuple(removed),
    )
    require_identical(files, local_hub.tree_manifest(repo, commit), repo_id, commit)
    return PushResult(
        repo_id=repo_id,
        url=repo.as_uri(),
        commit=commit,
        revision=branch,
        files=len(files),
        bytes=sum(entry.size for entry in files.values()),
        removed=removed,
    )


def verify_local_hub(
    folder: str | Path, root: str | Path, repo_id: str, commit: str, revision: str | None = "main"
) -> list[str]:
    """:func:`hfprune.hub.push.verify_published` for a local Hub-layout folder."""
    repo = local_hub.repo_dir(root, repo_id).absolute()
    if not (repo / ".git").is_dir():
        return [f"{repo} is gone"]
    head = local_hub.resolve(repo, f"refs/heads/{revision or 'main'}")
    if head != commit:
        return [f"branch {revision or 'main'} is now at {str(head)[:12]}, not {commit[:12]}"]
    return mismatches(local_manifest(Path(folder)), local_hub.tree_manifest(repo, commit))
