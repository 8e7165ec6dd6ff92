"""Vocabulary trimming: keep the tokens the user's languages use, drop the rest of the embedding and output rows.

``families`` reads the tokenizer's kind; ``corpus`` counts the tokens of the kept languages' text;
``scripts`` knows Unicode scripts; ``selection`` decides what stays (``closure`` keeps BPE tokens reachable);
``tokenizer_surgery`` and ``model_surgery`` rewrite the tokenizer, the rows and the configs; ``verify`` checks
the result on held-out text; ``speed`` times generation; ``trim`` puts it together.
"""

from .settings import VocabSettings
from .trim import VocabTrimResult, save_trimmed, trim_vocab, trim_vocab_pretrained

__all__ = ["VocabSettings", "VocabTrimResult", "save_trimmed", "trim_vocab", "trim_vocab_pretrained"]
