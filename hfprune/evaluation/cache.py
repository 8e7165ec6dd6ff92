"""A cache of per-(model, task, language) results, so re-running the same evaluation is instant.

The key is the model's weight hash, its tokenizer's hash, the task and language, and every setting that
changes a number (split, data sha256, limit, context length, ...). Entries are small JSON files written
atomically; a corrupt one is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..constants import cache_dir
from ..io import atomic_write_text

#: Bump when a change to scoring makes old cached numbers wrong.
CACHE_VERSION = 1


class ResultCache:
    """JSON files under ``root/{model hash}/{task}/{lang}-{settings hash}.json``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "eval"

    def get(self, model_hash: str, task: str, lang: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The cached value, or ``None`` when absent or unreadable."""
        path = self._path(model_hash, task, lang, settings)
        try:
            return json.loads(path.read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, model_hash: str, task: str, lang: str, settings: dict[str, Any], value: dict[str, Any]) -> None:
        """Store ``value`` (JSON-serialisable) atomically."""
        path = self._path(model_hash, task, lang, settings)
        atomic_write_text(path, json.dumps({"settings": settings, "value": value}, sort_keys=True))

    def _path(self, model_hash: str, task: str, lang: str, settings: dict[str, Any]) -> Path:
        keyed = json.dumps({"v": CACHE_VERSION, **settings}, sort_keys=True, default=str)
        settings_hash = hashlib.sha256(keyed.encode("utf-8")).hexdigest()[:20]
        return self.root / model_hash[:32] / task / f"{lang}-{settings_hash}.json"
