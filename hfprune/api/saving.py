"""Writing a pruned model: safetensors shards, tokenizer, hfprune.json, atomically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import nn

from ..constants import DEFAULT_MAX_SHARD_SIZE, METADATA_FILE, VOCAB_MAP_FILE
from ..errors import InvalidOptionError
from ..healing.quality import QUALITY_PLOT, plot_quality
from ..io import atomic_folder, read_json_object, write_local_record, write_record
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
        metadata = {**result.to_dict(), **(extra or {})}
        if result.trimmed is not None:
            save_trimmed(tmp, result.trimmed, Path(base_folder) if base_folder else None)
            tokenizer = None
        elif base_folder is not None:
            carry_vocabulary(Path(base_folder), tmp, metadata)
        _finish_folder(tmp, tokenizer, metadata, local_base)
    return Path(out)


def carry_vocabulary(base_folder: Path, folder: Path, metadata: dict[str, Any]) -> None:
    """A base that hfprune trimmed earlier keeps what says so: its ``vocab_map.json`` (the kept tokens' ids in the
    original model, which healing needs to read the original teacher's logits) and its ``vocab`` record (the
    card's vocabulary section, the tokenizer hash the teacher must have). Pruning does not touch the vocabulary,
    so both stay true of the pruned model."""
    source = base_folder / VOCAB_MAP_FILE
    if not source.is_file() or "vocab" in metadata:
        return
    shutil.copyfile(source, folder / VOCAB_MAP_FILE)
    base_record = base_folder / METADATA_FILE
    vocab = read_json_object(base_record).get("vocab") if base_record.is_file() else None
    if vocab:
        metadata["vocab"] = {**vocab, "carried_from_base": True}


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
    write_record(folder / METADATA_FILE, metadata)
    quality = (metadata.get("healing") or {}).get("quality")
    if quality:  # pruned with --heal: the card's plot of dense, pruned and healed per language
        plot_quality(quality, folder / QUALITY_PLOT)
    if local_base is not None:
        write_local_record(folder, local_base)
