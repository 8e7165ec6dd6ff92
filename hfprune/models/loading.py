"""Loading models safely: safetensors only, remote code off unless asked, Hub ids pulled into the usual cache."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..constants import CARD_FILE, METADATA_FILE, WEIGHTS_INDEX
from ..errors import (
    ModelNotFoundError,
    UnsafeWeightsError,
    UnsupportedArchitectureError,
)
from ..io import sha256_file
from .placement import Placement, remove_with, scratch_folder
from .pull import resolve_model_dir


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
    if not any(folder.glob("*.safetensors")):
        raise UnsafeWeightsError(
            f"{name_or_path} has no *.safetensors weights; hfprune never loads pickled weights (.bin/.pt). "
            "Convert the checkpoint to safetensors first"
        )
    return folder


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any | None:
    """The folder's tokenizer, or None: weights-only repos exist, and calibration says when it needs one."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError):
        return None


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
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    folder = checkpoint_folder(name_or_path, revision=revision, token=token, trust_remote_code=trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except ValueError as err:
        raise UnsupportedArchitectureError(f"{name_or_path}: {err}") from err
    auto_cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    offload = scratch_folder(placement.offload_folder) if placement is not None else None
    placed = placement.from_pretrained_kwargs(offload) if placement is not None and offload is not None else {}
    try:
        model = auto_cls.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=torch_dtype, **placed
        )
    except BaseException as err:
        if offload is not None:
            shutil.rmtree(offload, ignore_errors=True)
        if not isinstance(err, ValueError):
            raise
        hint = "" if trust_remote_code else " (if it needs custom code, pass --trust-remote-code)"
        raise UnsupportedArchitectureError(
            f"{name_or_path}: transformers cannot build a {auto_cls.__name__} for "
            f"model_type '{config.model_type}'{hint}: {err}"
        ) from err
    if offload is not None:
        remove_with(model, offload)
    tokenizer = load_tokenizer(folder, trust_remote_code)
    if require_tokenizer and tokenizer is None:
        raise ModelNotFoundError(f"{name_or_path} has no tokenizer; evaluation needs one to read text")
    if device is not None and placement is None:
        model = model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, describe_source(str(name_or_path), revision, folder), folder)


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
            source["hfprune"] = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    return source


def _identifies_weights(path: Path) -> bool:
    return path.is_file() and (path.name in ("config.json", WEIGHTS_INDEX) or path.suffix == ".safetensors")


def _card_fields(card: Path) -> dict[str, Any] | None:
    if not card.is_file():
        return None
    from huggingface_hub import ModelCard

    metadata = ModelCard(card.read_text(encoding="utf-8"), ignore_metadata_errors=True).data.to_dict()
    return {key: metadata[key] for key in CARD_FIELDS if metadata.get(key) is not None}
