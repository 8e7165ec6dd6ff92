"""Loading models safely: safetensors only, remote code off unless asked, Hub ids pulled into the usual cache."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..constants import CARD_FILE, METADATA_FILE, WEIGHTS_INDEX
from ..errors import (
    BrokenModelFileError,
    IncompleteCheckpointError,
    ModelNotFoundError,
    UnsafeWeightsError,
    UnsupportedArchitectureError,
)
from ..io import read_json_object, sha256_file
from .config import read_config
from .placement import Placement, remove_with, scratch_folder
from .pull import resolve_model_dir
from .streaming import read_header


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: Any | None
    source: dict[str, Any]  # what to record: id, revision, resolved commit (or a local folder's name and hashes)
    folder: Path | None = None  # where the checkpoint is on this machine (never recorded in published files)


def checkpoint_folder(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """The local folder of a Hub id or folder, refused unless it holds safetensors weights.

    Raises:
        ModelNotFoundError, RevisionNotFoundError, GatedModelError, HubUnavailableError: from the Hub.
        UnsafeWeightsError: no ``*.safetensors`` (pickled weights are never loaded).
    """
    folder = resolve_model_dir(str(name_or_path), revision=revision, token=token, trust_remote_code=trust_remote_code)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise UnsafeWeightsError(
            f"{name_or_path} has no *.safetensors weights; hfprune never loads pickled weights (.bin/.pt). "
            "Convert the checkpoint to safetensors first"
        )
    for path in weights:  # a truncated or zero-byte file is one clear line, before transformers reads it
        read_header(path)
    return folder


#: Files that mean "this folder has a tokenizer": if one is there and loading fails, the tokenizer is broken.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any | None:
    """The folder's tokenizer, or None when it has none: weights-only repos exist, and calibration says when
    it needs one.

    Raises:
        BrokenModelFileError: tokenizer files are there but cannot be read (a corrupt one is not a missing one).
    """
    from transformers import AutoTokenizer

    present = [name for name in TOKENIZER_FILES if (folder / name).is_file()]
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        if not present:
            return None
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BrokenModelFileError(
            f"the tokenizer in {folder} ({', '.join(present)}) cannot be read: {why}; re-download or re-save it"
        ) from err


def _check_tokenizer_fits(name: str | Path, model: nn.Module, tokenizer: Any) -> None:
    """A tokenizer with more tokens than the model has embedding rows would index past them on some text."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise IncompleteCheckpointError(
            f"{name}: the tokenizer has {len(tokenizer)} tokens but the model only {rows} embedding rows "
            "(config.json and the tokenizer disagree); use the tokenizer that was saved with these weights"
        )


def load_model(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    require_tokenizer: bool = False,
    placement: Placement | None = None,
) -> LoadedModel:
    """Load a causal LM (or a seq2seq model such as MT5) from a Hub id or a local folder, safetensors only.

    ``device``: move the model there (default: stay on CPU). ``require_tokenizer``: refuse a weights-only
    repo (evaluation reads text, so it needs one). ``placement``: spread the model over GPUs, CPU and disk
    with accelerate instead (``device`` is then ignored; see :mod:`hfprune.models.placement`).

    Raises:
        ModelNotFoundError, RevisionNotFoundError, GatedModelError, HubUnavailableError: from the Hub.
        UnsafeWeightsError: the folder holds no ``*.safetensors`` (pickled weights are never loaded).
        UnsupportedArchitectureError: transformers knows no model class for this config.
        ModelNotFoundError: ``require_tokenizer`` and the model has no tokenizer.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    folder = checkpoint_folder(name_or_path, revision=revision, token=token, trust_remote_code=trust_remote_code)
    config = read_config(folder, name_or_path, trust_remote_code)
    auto_cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    offload = scratch_folder(placement.offload_folder) if placement is not None else None
    placed = placement.from_pretrained_kwargs(offload) if placement is not None and offload is not None else {}
    try:
        with _quiet_transformers():  # its load report would print before our one-line error
            model, info = auto_cls.from_pretrained(
                folder,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
                dtype=torch_dtype,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
                **placed,
            )
        _require_complete(name_or_path, info)
    except BaseException as err:
        if offload is not None:
            shutil.rmtree(offload, ignore_errors=True)
        if not isinstance(err, ValueError) or isinstance(err, IncompleteCheckpointError):
            raise
        hint = "" if trust_remote_code else " (if it needs custom code, pass --trust-remote-code)"
        raise UnsupportedArchitectureError(
            f"{name_or_path}: transformers cannot build a {auto_cls.__name__} for "
            f"model_type '{config.model_type}'{hint}: {err}"
        ) from err
    if offload is not None:
        remove_with(model, offload)
    tokenizer = load_tokenizer(folder, trust_remote_code)
    if tokenizer is not None:
        _check_tokenizer_fits(name_or_path, model, tokenizer)
    if require_tokenizer and tokenizer is None:
        raise ModelNotFoundError(f"{name_or_path} has no tokenizer; evaluation needs one to read text")
    if device is not None and placement is None:
        model = model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, describe_source(str(name_or_path), revision, folder), folder)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as transformers_logging

    before = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(before)


def _require_complete(name: str | Path, info: dict[str, Any]) -> None:
    """Refuse weights that leave parameters randomly initialised: missing tensors, or tensors whose shape is
    not the one the config gives (transformers would re-initialise them and carry on)."""
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda entry: str(entry[0]))
    if not missing and not mismatched:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing ({_some(missing)})")
    if mismatched:
        shown = [
            f"{key}: {tuple(saved)} in the weights, {tuple(wanted)} in the config" for key, saved, wanted in mismatched
        ]
        parts.append(f"{len(mismatched)} of another shape than config.json says ({_some(shown)})")
    raise IncompleteCheckpointError(
        f"{name}: the weights do not match the architecture in config.json: {'; '.join(parts)}. hfprune never "
        "prunes a model with randomly initialised layers: re-download or re-save the model"
    )


def _some(items: list[str], limit: int = 4) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def weights_sha256(folder: Path) -> dict[str, str]:
    """sha256 of each safetensors file of a model folder: what results record, so a card can tell whether
    they were measured on the weights in the folder it describes."""
    return {path.name: sha256_file(path) for path in sorted(folder.glob("*.safetensors"))}


#: What a local base model's card front matter contributes to ``hfprune.json`` (its licence and gating), so the
#: pruned model's card can state them without the base folder's path ever being published.
CARD_FIELDS = ("license", "license_name", "license_link", "gated", "extra_gated_prompt", "language")


def describe_source(name: str, revision: str | None, folder: Path) -> dict[str, Any]:
    """What ``hfprune.json`` records about the base model: a Hub id with its revision and resolved commit, or a
    local folder by its name and the sha256 of its config and weights (never a path of this machine)."""
    is_local = Path(name).expanduser().is_dir()
    if is_local:
        source: dict[str, Any] = {"id": Path(name).expanduser().resolve().name, "local": True}
        source["files"] = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if _identifies_weights(p)}
        card = _card_fields(folder / CARD_FILE)
        if card is not None:
            source["card"] = card
    else:
        source = {"id": name, "revision": revision or "main", "commit": folder.name}
    meta = folder / METADATA_FILE
    if meta.is_file():  # pruning an already pruned model: keep the lineage
        try:
            source["hfprune"] = read_json_object(meta)
        except ValueError:
            pass  # a broken record of an earlier pruning only loses the lineage, never the job
    return source


def _identifies_weights(path: Path) -> bool:
    return path.is_file() and (path.name in ("config.json", WEIGHTS_INDEX) or path.suffix == ".safetensors")


def _card_fields(card: Path) -> dict[str, Any] | None:
    if not card.is_file():
        return None
    from huggingface_hub import ModelCard

    metadata = ModelCard(card.read_text(encoding="utf-8"), ignore_metadata_errors=True).data.to_dict()
    return {key: metadata[key] for key in CARD_FIELDS if metadata.get(key) is not None}
