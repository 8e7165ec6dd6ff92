"""Hub failures during a push, turned into hfprune errors that say what to do.

Only the repo id, the user name and file names go into messages; tokens and request headers never do.
"""

from __future__ import annotations

from huggingface_hub import errors as hf_errors

from hfprune.errors import HfpruneError
from hfprune.publish.errors import (
    LOGIN_HINT,
    InvalidTokenError,
    NotLoggedInError,
    RepoPermissionError,
    UploadInterruptedError,
)


def translate_push_error(error: BaseException, repo_id: str, user: str | None) -> HfpruneError | None:
    """Our exception for a failure the user can act on, or ``None`` to let the original propagate."""
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
    if _connection_dropped(error):
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


def _connection_dropped(error: BaseException | None) -> bool:
    """A transport failure anywhere in the chain (huggingface_hub wraps LFS upload failures in RuntimeError)."""
    transport = _transport_errors()
    while error is not None:
        if isinstance(error, transport) and not isinstance(error, hf_errors.HfHubHTTPError):
            return True
        error = error.__cause__ or error.__context__
    return False
