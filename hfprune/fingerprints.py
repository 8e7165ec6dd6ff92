"""The one fingerprint of a tokenizer: what calibration records beside its sample hashes, what a trimmed
vocabulary records before and after, and what evaluation keys its cache and results on.

One definition, so the same tokenizer has the same hash in every record hfprune writes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of the tokenizer's full definition (fast tokenizers) or its vocabulary, plus its special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        text = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    special = json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str)
    return hashlib.sha256((text + special).encode("utf-8")).hexdigest()
