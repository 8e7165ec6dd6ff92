"""Pulling models from the Hugging Face Hub, with the Hub's errors turned into hfprune's.

Everything goes through ``huggingface_hub.snapshot_download``, so the user's usual setup applies unchanged:
``HF_TOKEN`` or ``hf auth login`` for private and gated repos, ``HF_HOME`` / ``HF_HUB_CACHE`` for the cache,
``HF_HUB_OFFLINE=1`` to use only what is cached, ``HF_ENDPOINT`` for a mirror. Only safetensors weights are
fetched: pickled checkpoints can run code when loaded, so they are never downloaded at all.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub

from ..errors import ModelNotFoundError, RevisionNotFoundError, UnsafeWeightsError
from ..hub_errors import translate
from ..repo_id import check_model_reference

#: What a pruning run needs from a model repo: safetensors weights and their index, configs, every
#: tokenizer format, the chat template, and the card and licence (they travel with a pruned model).
DEFAULT_ALLOW_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "*.tiktoken",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "README.md",
    "LICENSE*",
)
#: The repo's own Python code: fetched only when the user allows remote code.
REMOTE_CODE_PATTERNS: tuple[str, ...] = ("*.py",)
#: Never fetched, whatever ``allow_patterns`` says: formats that unpickle (or that we cannot load safely).
PICKLED_PATTERNS: tuple[str, ...] = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.pkl")


def pull(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    allow_patterns: tuple[str, ...] | list[str] = DEFAULT_ALLOW_PATTERNS,
) -> Path:
    """Download (or find in the Hub cache) a model's safetensors snapshot and return its folder.

    Args:
        repo_id: ``owner/name`` on the Hub.
        revision: branch, tag or commit; ``None`` means the default branch (``main``).
        token: a token, ``False`` for anonymous access, or ``None`` for ``HF_TOKEN`` / ``hf auth login``.
        cache_dir: the Hub cache to use; ``None`` means ``HF_HUB_CACHE`` (under ``HF_HOME``).
        allow_patterns: file patterns to fetch; pickled formats are excluded regardless.

    Raises:
        ModelNotFoundError: no such repo, or it is private and the token does not give access.
        GatedModelError: the repo is gated and its licence was not accepted with this account.
        RevisionNotFoundError: the repo has no such branch, tag or commit.
        HubUnavailableError: offline mode or no connection, and the snapshot is not cached.
        UnsafeWeightsError: the snapshot holds no ``*.safetensors`` file.
    """
    check_model_reference(repo_id)
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision or "main",
            token=token,
            cache_dir=cache_dir,
            allow_patterns=list(allow_patterns),
            ignore_patterns=list(PICKLED_PATTERNS),
        )
    except Exception as error:  # noqa: BLE001 - translated below, re-raised untouched otherwise
        ours = translate(error, repo_id, revision=revision, token=token)
        if ours is None:
            raise
        raise ours from error
    folder = Path(folder)
    if not any(folder.rglob("*.safetensors")):
        raise UnsafeWeightsError(
            f"'{repo_id}' ships no safetensors weights (only pickled formats such as pytorch_model.bin), and "
            "hfprune loads safetensors only because pickled files can run code. Convert the checkpoint first "
            "(load it with transformers in a trusted environment and call save_pretrained(..., "
            "safe_serialization=True)), or use a repo that provides model.safetensors."
        )
    return folder


def resolve_model_dir(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """A local model folder as given, otherwise the pulled Hub snapshot of that repo id (with the repo's ``*.py``
    only when ``trust_remote_code``).

    Raises:
        ModelNotFoundError: neither an existing folder nor a valid Hub id (a mistyped path, ``../x``).
        RevisionNotFoundError: ``revision`` was given with a local folder (a folder has no revisions).
        And everything :func:`pull` raises.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if revision is not None:
            raise RevisionNotFoundError(
                f"'{name_or_path}' is a local folder, which has no revisions: drop --revision {revision!r}, or "
                "pass a Hub repo id instead of a path."
            )
        return local
    if local.exists() or local.is_symlink():  # a file (or a broken link) is never taken for a Hub id
        raise ModelNotFoundError(
            f"{name_or_path} is a file, not a model folder: give the folder that holds config.json and the "
            "*.safetensors weights, or a Hub repo id"
        )
    check_model_reference(str(name_or_path))
    patterns = DEFAULT_ALLOW_PATTERNS + (REMOTE_CODE_PATTERNS if trust_remote_code else ())
    return pull(str(name_or_path), revision=revision, token=token, allow_patterns=patterns)
