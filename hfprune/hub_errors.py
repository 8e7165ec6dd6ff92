"""The one translator from Hub failures to hfprune errors that say what to do.

Reads (pull) and writes (push, Space deploy) fail differently: a missing repo on a read may be a typo or a
missing branch; a 403 on a write is a namespace the token cannot write to. :func:`translate` knows both.
Only repo ids, revisions, user names and file names go into messages; tokens and request headers never do.
"""

from __future__ import annotations

import huggingface_hub
from huggingface_hub import errors as hf_errors

from .errors import (
    GatedModelError,
    HfpruneError,
    HubUnavailableError,
    InvalidTokenError,
    ModelNotFoundError,
    NotLoggedInError,
    RepoPermissionError,
    RevisionNotFoundError,
    UploadInterruptedError,
)

LOGIN_HINT = (
    "Log in with `hf auth login` (or set HF_TOKEN) using a token with *write* access, created at "
    "https://huggingface.co/settings/tokens"
)


def translate(
    error: BaseException,
    repo_id: str,
    *,
    writing: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
    user: str | None = None,
) -> HfpruneError | None:
    """Our exception for a Hub failure the user can act on, or ``None`` to let the original propagate.

    Args:
        writing: the failure happened while publishing (push, Space deploy) rather than downloading.
        revision, token: of a download, to tell a missing revision from a missing repo.
        user: the logged-in user of a write, to suggest a namespace they own.
    """
    return _translate_write(error, repo_id, user) if writing else _translate_read(error, repo_id, revision, token)


def _translate_read(
    error: BaseException, repo_id: str, revision: str | None, token: str | bool | None
) -> HfpruneError | None:
    url = f"https://huggingface.co/{repo_id}"
    if isinstance(error, Exception) and _is_missing_revision(error, repo_id, revision, token):
        return RevisionNotFoundError(
            f"'{repo_id}' has no revision '{revision}'. Pass an existing branch, tag or commit hash "
            f"(see {huggingface_hub.constants.ENDPOINT}/{repo_id}/tree/main), or leave --revision out for the default branch."
        )
    if isinstance(error, hf_errors.GatedRepoError):  # a subclass of RepositoryNotFoundError: test it first
        return GatedModelError(
            f"'{repo_id}' is gated. Accept its licence on {url} with your account, then log in with "
            "`hf auth login` (or set HF_TOKEN) using a token of that account."
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"No model '{repo_id}' on the Hub (and no local folder by that name). Check the id; if the repo "
            "is private or gated, log in with `hf auth login` or set HF_TOKEN to a token that can read it."
        )
    if isinstance(error, hf_errors.LocalEntryNotFoundError):
        if huggingface_hub.constants.is_offline_mode():
            why = "offline mode is on (HF_HUB_OFFLINE=1)"
            fix = "Unset HF_HUB_OFFLINE to download it, or pull it once on a machine that is online."
        else:
            why = "the Hub could not be reached"
            fix = "Check your network connection (or HF_ENDPOINT) and try again."
        return HubUnavailableError(
            f"Cannot get '{repo_id}' (revision {revision or 'main'}): {why} and it is not in the local cache. {fix}"
        )
    return None


def _is_missing_revision(error: Exception, repo_id: str, revision: str | None, token: str | bool | None) -> bool:
    """Whether the repo exists but ``revision`` does not.

    huggingface.co says so directly (``RevisionNotFound``). Mirrors served through ``HF_ENDPOINT`` (olah, for
    one) answer "repository not found" for a missing branch or tag and "entry not found" for a missing
    commit; then one extra request for the default branch tells the two cases apart.
    """
    if isinstance(error, hf_errors.RevisionNotFoundError):
        return True
    if revision in (None, "main") or isinstance(error, hf_errors.GatedRepoError):
        return False
    ambiguous = isinstance(error, hf_errors.RepositoryNotFoundError) or (
        isinstance(error, hf_errors.LocalEntryNotFoundError)
        and isinstance(error.__cause__, hf_errors.RemoteEntryNotFoundError)
    )
    if not ambiguous:
        return False
    try:
        # A fresh HfApi reads HF_ENDPOINT now; the module-level one froze it at import.
        huggingface_hub.HfApi(token=token).model_info(repo_id, revision="main")
    except Exception:  # noqa: BLE001 - any failure means we cannot claim the repo exists
        return False
    return True


def _translate_write(error: BaseException, repo_id: str, user: str | None) -> HfpruneError | None:
    if isinstance(error, hf_errors.LocalTokenNotFoundError):
        return NotLoggedInError(f"pushing to '{repo_id}' needs a Hub token and none was found. {LOGIN_HINT}")
    status = _status(error)
    if status == 401 and user is None:
        return InvalidTokenError(f"the Hub rejected your token (invalid, expired or revoked). {LOGIN_HINT}")
    if status in (401, 403):
        namespace, _, name = repo_id.partition("/")
        own = f" (e.g. {user}/{name})" if user else ""
        return RepoPermissionError(
            f"your token{f' (user {user!r})' if user else ''} cannot write to '{repo_id}': the namespace "
            f"'{namespace}' belongs to another user or organisation, or the token is read-only. Push to a "
            f"namespace you own{own}, ask the owner of '{namespace}' for write access, or use a token with "
            "write access (https://huggingface.co/settings/tokens)"
        )
    if isinstance(error, hf_errors.OfflineModeIsEnabled) or huggingface_hub.constants.is_offline_mode():
        return HubUnavailableError(
            f"cannot publish to '{repo_id}': offline mode is on (HF_HUB_OFFLINE=1), so hfprune sent nothing. "
            "Unset HF_HUB_OFFLINE to push to the Hub, or publish into a local folder with --local-hub DIR"
        )
    if connection_dropped(error):
        return UploadInterruptedError(
            f"the connection to the Hub dropped before it confirmed the commit to '{repo_id}', so hfprune does not "
            "claim anything was published. Run the same command again: files already uploaded are not sent twice, "
            "and the result is verified at the end"
        )
    return None


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) if isinstance(error, hf_errors.HfHubHTTPError) else None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of whichever HTTP client huggingface_hub uses (httpx2 today, httpx before)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx"):
        try:
            found.append(__import__(module_name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def connection_dropped(error: BaseException | None) -> bool:
    """A transport failure anywhere in the chain (huggingface_hub wraps LFS upload failures in RuntimeError)."""
    transport = _transport_errors()
    while error is not None:
        if isinstance(error, transport) and not isinstance(error, hf_errors.HfHubHTTPError):
            return True
        error = error.__cause__ or error.__context__
    return False
