"""Writing a pruned model: safetensors shards, tokenizer, hfprune.json, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..constants import DEFAULT_MAX_SHARD_SIZE, METADATA_FILE
from ..errors import InvalidOptionError
from ..io import atomic_folder, write_json, write_local_record
from ..models import is_dispatched
from ..vocab import save_trimmed
from .settings import PruneResult


def check_shard_size(max_shard_size: str | int) -> int:
    """The shard size in bytes; checked before any work, not after pruning.

    Raises:
        InvalidOptionError: not a size such as ``2GB`` or ``500MB``.
    """
    from transformers.utils.hub import convert_file_size_to_int

    try:
        size = convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError):
        size = 0
    if not isinstance(size, int) or size <= 0:
        raise InvalidOptionError(f"--max-shard-size {max_shard_size!r} is not a size; write it as e.g. 2GB or 500MB")
    return size


def save_pruned(
    model: nn.Module,
    tokenizer: Any,
    result: PruneResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    extra: dict[str, Any] | None = None,
    local_base: Path | None = None,
    base_folder: str | Path | None = None,
) -> Path:
    """Write the pruned model, its tokenizer and ``hfprune.json`` to ``out`` atomically.

    ``local_base``: the base model's folder when it is local; kept in a dot-file that is never published (so
    ``hfprune space serve`` finds the dense model) while ``hfprune.json`` records only its name and hashes.

    Weights are dense safetensors holding the zeros: sparse storage formats were removed upstream and
    loaders now mis-load them silently, so dense is the format every ``from_pretrained`` reads right.
    A run that trimmed the vocabulary saves its trimmed tokenizer and ``vocab_map.json`` instead of
    ``tokenizer``; ``base_folder`` (the base checkpoint) lets it record the file sizes before and after.
    """
    if is_dispatched(model):
        # accelerate gives each offloaded module its own meta parameter, which unties a tied head from the
        # embeddings; tied again, the head is saved once (as save_pretrained does for a model in memory)
        model.tie_weights()
    with atomic_folder(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        if result.trimmed is not None:
            save_trimmed(tmp, result.trimmed, Path(base_folder) if base_folder else None)
            tokenizer = None
        _finish_folder(tmp, tokenizer, {**result.to_dict(), **(extra or {})}, local_base)
    return Path(out)


def _generation_config(folder: Path) -> Any:
    """The checkpoint's generation config, or ``None`` when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(folder)
    except OSError:
        return None


def _finish_folder(folder: Path, tokenizer: Any, metadata: dict[str, Any], local_base: Path | None = None) -> None:
    """What every output folder gets beside its weights: the tokenizer, ``hfprune.json`` and, for a local base,
    the never-published record of where it is."""
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    write_json(folder / METADATA_FILE, metadata)
    if local_base is not None:
        write_local_record(folder, local_base)
