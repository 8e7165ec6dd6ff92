"""Telling a Hub repo id from a local path, before any request is made."""

from __future__ import annotations

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .errors import InvalidRepoIdError, ModelNotFoundError


def check_repo_id(repo_id: str) -> None:
    """Refuse anything but a valid ``owner/name`` (no ``..``, no spaces, the Hub's characters) as a target.

    Raises:
        InvalidRepoIdError: with what a valid id looks like.
    """
    owner, slash, name = repo_id.partition("/")
    problem = None if slash and owner and name else "it is not OWNER/NAME"
    if problem is None:
        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            problem = "the Hub allows letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'"
    if problem:
        raise InvalidRepoIdError(
            f"'{repo_id}' is not a Hub repo id ({problem}); use OWNER/NAME, e.g. your-user/tiny-llama-wanda-50"
        )


def check_model_reference(name: str) -> None:
    """A model argument that is not an existing folder must be a valid Hub id; a mistyped path is said as such.

    Raises:
        ModelNotFoundError: neither a folder here nor a possible Hub id.
    """
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelNotFoundError(
            f"'{name}' is not a folder here and not a Hub repo id (OWNER/NAME): check the path, or give the "
            "model's id on the Hub"
        ) from None
