"""Publish a pruned folder to the Hub in one commit, then prove it arrived intact.

The calls are the plain ``HfApi`` ones a user would make (``whoami``, ``create_repo``, ``create_branch``,
``create_commit``, ``list_repo_tree``), so ``HF_TOKEN`` / ``hf auth login`` and ``HF_ENDPOINT`` apply as
usual. ``create_commit`` with every file is used rather than ``upload_folder``: with ``hf_xet`` installed
``upload_folder`` may split a folder over several commits, and a half-published model must never be visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError

from ..constants import VERSION
from ..hub_errors import translate
from ..repo_id import check_repo_id
from .manifest import FileEntry, local_manifest, mismatches, require_identical, stale_files
from .preflight import check_publishable


@dataclass
class PushResult:
    """Where the model went and what was checked."""

    repo_id: str
    url: str  # the page to open: the repo, its branch, or the pull request
    commit: str
    revision: str
    files: int
    bytes: int
    pr_url: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: remote files the folder did not have, deleted in the same commit (the repo now equals the folder)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    create_pr: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    force: bool = False,
    token: str | None = None,
) -> PushResult:
    """Make ``repo_id`` hold exactly the files of ``folder``, in one commit, and verify it remotely.

    Every file is uploaded, and remote files the folder does not have are deleted in the same commit (a stale
    ``model.safetensors`` beside new shards would otherwise be what ``from_pretrained`` loads). The commit is
    made on top of the branch head that was listed (``parent_commit``), so a concurrent push fails rather than
    mixing. Verification lists the new commit and compares both directions: sizes, hashes, no extra file.

    Args:
        private: create the repo private (an existing repo keeps its visibility).
        create_pr: open a pull request instead of committing to the branch.
        revision: the branch to commit to (created from ``main`` when missing); default ``main``.
        force: publish a folder without ``hfprune.json`` or without a card.
        token: a token; ``None`` means ``HF_TOKEN`` or the one saved by ``hf auth login``.

    Raises:
        NotAPrunedFolderError, MissingCardError: see :func:`check_publishable`.
        NotLoggedInError, InvalidTokenError, RepoPermissionError: no token, a rejected one, no write access.
        UploadInterruptedError: the connection dropped before the Hub confirmed the commit.
        PushVerificationError: the remote files differ from the local ones after the commit.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    api = HfApi(token=token)  # a fresh client reads HF_ENDPOINT now
    metadata = check_publishable(folder, force=force, token=api.token or huggingface_hub.get_token())
    files = local_manifest(folder)
    user = None
    warnings = []
    try:
        user = api.whoami()["name"]
        existed = _create_repo(api, repo_id, private=private)
        if private and existed:
            warnings.append(
                f"'{repo_id}' already existed, so --private changed nothing: a repo keeps the visibility it was "
                "created with. Check it, and change it if needed, in the repo's Settings page"
            )
        if revision not in (None, "main") and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        parent = api.repo_info(repo_id, revision="main" if create_pr else (revision or "main")).sha
        removed = stale_files(files, remote_manifest(api, repo_id, parent)) if parent else []
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in files
        ]
        operations += [CommitOperationDelete(path_in_repo=path) for path in removed]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or default_commit_message(metadata),
            commit_description=_commit_description(metadata, removed),
            revision=None if create_pr else revision,
            create_pr=create_pr,
            parent_commit=parent,
        )
        remote = remote_manifest(api, repo_id, info.oid)
    except Exception as error:  # noqa: BLE001 - translated below, re-raised untouched otherwise
        ours = translate(error, repo_id, writing=True, user=user)
        if ours is None:
            raise
        raise ours from error
    require_identical(files, remote, repo_id, info.oid)
    branch = revision or "main"
    page = info.pr_url or (f"{api.endpoint}/{repo_id}" + ("" if branch == "main" else f"/tree/{branch}"))
    return PushResult(
        repo_id=repo_id,
        url=page,
        commit=info.oid,
        revision="pr" if create_pr else branch,
        files=len(files),
        bytes=sum(entry.size for entry in files.values()),
        pr_url=info.pr_url,
        warnings=warnings,
        removed=removed,
    )


def verify_published(
    folder: str | Path, repo_id: str, commit: str, revision: str | None = "main", token: str | None = None
) -> list[str]:
    """What differs between ``folder`` and what was published: the branch no longer at ``commit`` (a pull
    request, ``revision="pr"``, is checked by its commit only), or the commit's files not the folder's.
    Empty when the repo still holds exactly this folder."""
    api = HfApi(token=token)
    try:
        if revision not in (None, "pr"):
            head = api.repo_info(repo_id, revision=revision).sha
            if head != commit:
                return [f"branch {revision} is now at {str(head)[:12]}, not {commit[:12]}"]
        remote = remote_manifest(api, repo_id, commit)
    except Exception as error:  # noqa: BLE001 - translated below, re-raised untouched otherwise
        ours = translate(error, repo_id)
        if ours is None:
            raise
        raise ours from error
    return mismatches(local_manifest(Path(folder)), remote)


def _create_repo(api: HfApi, repo_id: str, *, private: bool) -> bool:
    """Create ``repo_id`` unless it exists; say whether it existed (``exist_ok=True`` would hide that)."""
    try:
        api.create_repo(repo_id, private=private)
    except HfHubHTTPError as error:
        status = None if error.response is None else error.response.status_code
        if status == 409:
            return True
        if status in (401, 402, 403) and _readable(api, repo_id):
            return True  # a token that may write to the repo but not create repos (as exist_ok=True allows)
        raise
    return False


def _readable(api: HfApi, repo_id: str) -> bool:
    try:
        api.repo_info(repo_id)
    except Exception:  # noqa: BLE001 - any failure means "cannot tell it exists"
        return False
    return True


def remote_manifest(api: HfApi, repo_id: str, commit: str) -> dict[str, FileEntry]:
    """Every file of ``commit`` as the Hub lists it: size, and sha256 (LFS) or git blob id (small files)."""
    files = {}
    for item in api.list_repo_tree(repo_id, revision=commit, recursive=True):
        if getattr(item, "blob_id", None) is None:
            continue  # a folder
        lfs = getattr(item, "lfs", None)
        if lfs is not None:
            files[item.path] = FileEntry(size=lfs.size, sha256=lfs.sha256)
        else:
            files[item.path] = FileEntry(size=item.size, git_blob_id=item.blob_id)
    return files


def default_commit_message(metadata: dict[str, Any]) -> str:
    """``Upload wanda-pruned model (50% sparse) with hfprune 0.1.0`` when the folder says what it is."""
    if "method" in metadata:
        sparsity = metadata.get("achieved_sparsity", metadata.get("target_sparsity", 0.0))
        return f"Upload {metadata['method']}-pruned model ({sparsity:.0%} sparse) with hfprune {VERSION}"
    return f"Upload model with hfprune {VERSION}"


def _commit_description(metadata: dict[str, Any], removed: Sequence[str] = ()) -> str:
    command = metadata.get("command")
    text = f"Reproduce with:\n\n    {' '.join(command)}\n" if command else ""
    if removed:
        text += "\nRemoved files the published folder no longer has: " + ", ".join(removed) + "\n"
    return text
