"""Errors of publishing (pull, card, push, run) that a user can act on; every message says what to do next.

Messages are built from repo ids, paths and file names only, never from tokens or request headers.
"""

from __future__ import annotations

from hfprune.errors import HfpruneError

LOGIN_HINT = (
    "Log in with `hf auth login` (or set HF_TOKEN) using a token with *write* access, created at "
    "https://huggingface.co/settings/tokens"
)


class NotLoggedInError(HfpruneError):
    """Pushing needs a token and none was found (no HF_TOKEN, no `hf auth login`)."""


class InvalidTokenError(HfpruneError):
    """The Hub rejected the token (revoked, mistyped, expired)."""


class RepoPermissionError(HfpruneError):
    """The token cannot write to that repo: another user's or organisation's namespace, or a read-only token."""


class InvalidRepoIdError(HfpruneError):
    """A push target that is not ``owner/name``."""


class NotAPrunedFolderError(HfpruneError):
    """The folder to push lacks ``hfprune.json`` (it was not produced by hfprune)."""


class MissingCardError(HfpruneError):
    """The folder to push has no ``README.md`` model card."""


class UploadInterruptedError(HfpruneError):
    """The connection failed before the Hub recorded the commit; nothing new was published."""


class PushVerificationError(HfpruneError):
    """After the commit, the remote files do not match the local ones (missing, other size or other hash)."""


class ResultsFormatError(HfpruneError):
    """An evaluation results file that ``hfprune eval`` did not write (or from an incompatible version)."""


class CardTemplateError(HfpruneError):
    """The model card template is missing or fails to render."""
