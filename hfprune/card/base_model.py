"""What a derivative must carry over from its base model's card: the licence (and whether the base is gated).

A pruned model is a derivative work, so its card states the base model's licence, and a gated base (Llama,
Gemma) keeps its terms: the card says so and links them. The base card is read from the local folder, or
from the Hub cache (``hfprune pull`` fetches README.md and LICENSE with the weights), or downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from ..constants import CARD_FILE

logger = logging.getLogger(__name__)


@dataclass
class BaseModelCard:
    """The parts of the base model's card the pruned model's card inherits."""

    repo_id: str | None  # a Hub id, or None for a local folder
    revision: str | None = None
    commit: str | None = None
    local_path: str | None = None
    local_name: str | None = None  # a local base, by its folder name (its path is never recorded)
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    gated: bool = False
    gated_prompt: str | None = None
    languages: list[str] = field(default_factory=list)
    found: bool = False

    @property
    def url(self) -> str | None:
        return f"https://huggingface.co/{self.repo_id}" if self.repo_id else None


def read_base_model_card(base: dict[str, Any]) -> BaseModelCard:
    """Describe the base recorded in ``hfprune.json`` (``{"id", "revision", "commit"}``) from its card.

    A local base (``"local": true``) is described by the card fields recorded when it was pruned. Never raises
    for a missing card: a base without one simply has no licence on record.
    """
    if base.get("local"):
        info = BaseModelCard(repo_id=None, local_name=str(base.get("id") or "") or None)
        if isinstance(base.get("card"), dict):
            _fill(info, base["card"])
        return info
    identifier = str(base.get("id") or "")
    local = Path(identifier).expanduser()
    is_local = bool(identifier) and local.is_dir()
    info = BaseModelCard(
        repo_id=None if is_local or not identifier else identifier,
        revision=base.get("revision"),
        commit=base.get("commit"),
        local_path=str(local) if is_local else None,
    )
    text = _card_text(local if is_local else None, info)
    if text is None:
        return info
    _fill(info, ModelCard(text, ignore_metadata_errors=True).data.to_dict())
    return info


def _fill(info: BaseModelCard, metadata: dict[str, Any]) -> None:
    info.found = True
    info.license = _str(metadata.get("license"))
    info.license_name = _str(metadata.get("license_name"))
    info.license_link = _str(metadata.get("license_link"))
    info.gated = bool(metadata.get("gated")) or any(key.startswith("extra_gated") for key in metadata)
    info.gated_prompt = _str(metadata.get("extra_gated_prompt"))
    languages = metadata.get("language") or []
    info.languages = [languages] if isinstance(languages, str) else [str(x) for x in languages]


def _card_text(local: Path | None, info: BaseModelCard) -> str | None:
    if local is not None:
        card = local / CARD_FILE
        return card.read_text(encoding="utf-8") if card.is_file() else None
    if not info.repo_id:
        return None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    revision = info.commit or info.revision or "main"
    cached = try_to_load_from_cache(info.repo_id, CARD_FILE, revision=revision)
    if isinstance(cached, str):  # `pull` fetched it with the weights: no request at all
        return Path(cached).read_text(encoding="utf-8")
    try:
        path = hf_hub_download(info.repo_id, CARD_FILE, revision=revision)
    except Exception as err:  # noqa: BLE001 - any failure means the licence is not known
        logger.warning(
            "could not read the card of %s (%s); its licence is not carried over", info.repo_id, type(err).__name__
        )
        return None
    return Path(path).read_text(encoding="utf-8")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
