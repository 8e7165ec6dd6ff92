"""Calibration text: a language mix -> reproducible token samples, each tagged with its language.

The pruning engine keeps activation statistics per language, so every sample carries the language it
was drawn from. Samples are non-overlapping windows of ``seqlen`` tokens cut from each language's text and
picked with a seeded RNG: the same source, tokenizer, mix, length and seed give the same samples, and their
hashes are recorded so anyone can check.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..constants import DEFAULT_SEED, DEFAULT_SEQLEN
from ..errors import (
    CalibrationError,
    CalibrationMixError,
    CalibrationSourceError,
    NotEnoughCalibrationTextError,
    UnknownLanguageError,
)
from ..fingerprints import tokenizer_sha256
from . import languages
from .mix import Mix
from .sources import TextSource


@dataclass
class CalibrationSet:
    """Token samples of equal length, each with its language: what the engine consumes."""

    input_ids: torch.Tensor  # [n_samples, seqlen], int64
    languages: list[str]  # one per sample
    sample_hashes: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)  # mix, source, seqlen, seed, hashes: for hfprune.json

    def __post_init__(self) -> None:
        if self.input_ids.ndim != 2 or self.input_ids.shape[0] != len(self.languages):
            raise CalibrationError(
                f"calibration samples must be [n_samples, seqlen] token ids with one language per sample; got "
                f"shape {tuple(self.input_ids.shape)} and {len(self.languages)} languages"
            )

    @property
    def seqlen(self) -> int:
        return int(self.input_ids.shape[1])

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def batches(self, batch_size: int) -> list[tuple[str, torch.Tensor]]:
        """Batches that never mix languages, so per-language statistics stay exact."""
        out: list[tuple[str, torch.Tensor]] = []
        for lang in dict.fromkeys(self.languages):
            idx = [i for i, sample_lang in enumerate(self.languages) if sample_lang == lang]
            for start in range(0, len(idx), batch_size):
                out.append((lang, self.input_ids[idx[start : start + batch_size]]))
        return out

    @classmethod
    def from_tensors(cls, input_ids: torch.Tensor, languages_: Sequence[str]) -> CalibrationSet:
        """Wrap ready-made token samples (tests, or users with their own pipeline)."""
        ids = input_ids.to(torch.long)
        hashes = [sample_hash(row) for row in ids]
        spec = {
            "kind": "tensors",
            "samples": len(ids),
            "seqlen": ids.shape[1],
            "languages": list(languages_),
            "sample_hashes": hashes,
        }
        return cls(ids, list(languages_), hashes, spec)


def sample_hash(ids: torch.Tensor) -> str:
    """sha256 of a sample's token ids as little-endian int32: stable across machines."""
    return hashlib.sha256(ids.to(torch.int32).numpy().astype("<i4").tobytes()).hexdigest()


def _adds_bos(tokenizer: Any) -> bool:
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a").input_ids
    return bool(ids) and ids[0] == bos


def _lang_seed(seed: int, lang: str) -> int:
    # Python's hash() is salted per process; derive a stable per-language seed instead.
    return int.from_bytes(hashlib.sha256(f"{seed}/{lang}".encode()).digest()[:8], "little")


def build_calibration(
    tokenizer: Any,
    source: TextSource,
    mix: Mix | str | None = None,
    *,
    seqlen: int = DEFAULT_SEQLEN,
    seed: int = DEFAULT_SEED,
) -> CalibrationSet:
    """Draw the samples of ``mix`` from ``source``.

    Each language's documents are tokenised as one stream (joined by newlines) and cut into
    non-overlapping windows; ``n`` of them are picked with a seeded RNG. When the tokenizer adds a BOS
    token, each sample starts with it, as the model saw text in training.

    Raises:
        CalibrationSourceError: the source has no text for a language.
        NotEnoughCalibrationTextError: fewer windows than samples asked (the message says how many fit).
    """
    if seqlen < 2:
        raise CalibrationMixError(f"--seqlen must be at least 2 tokens, got {seqlen}")
    mix = Mix.parse(mix) if mix is not None else Mix.even(_valid_languages(source.languages()))
    bos = [tokenizer.bos_token_id] if _adds_bos(tokenizer) else []
    body = seqlen - len(bos)

    rows: list[torch.Tensor] = []
    langs: list[str] = []
    per_lang: dict[str, Any] = {}
    for entry in mix:
        key = languages.match(entry.language, source.languages())
        if key is None:
            raise CalibrationSourceError(
                f"the calibration source has no text for '{entry.language}'; it has: "
                + ", ".join(source.languages())
                + ". Pass a --calib-source with text in that language, or leave it out for hfprune's default text"
            )
        docs = source.documents(key, min_chars=entry.samples * body * 8)
        text = "\n".join(docs)
        if not text.strip():
            raise CalibrationSourceError(f"the calibration text for '{entry.language}' is empty")
        # The whole stream at once, cut into windows below: verbose=False keeps transformers from warning that
        # it is longer than the model's context (no window ever is).
        ids = torch.tensor(tokenizer(text, add_special_tokens=False, verbose=False).input_ids, dtype=torch.long)
        n_windows = ids.numel() // body
        if n_windows < entry.samples:
            raise NotEnoughCalibrationTextError(
                f"'{entry.language}' has {ids.numel():,} tokens ({len(text.encode()):,} bytes of text): "
                f"room for {n_windows} samples of {seqlen} tokens, but {entry.samples} were asked; "
                f"ask for at most {n_windows}, lower --seqlen, or add text"
            )
        picks = sorted(random.Random(_lang_seed(seed, entry.language)).sample(range(n_windows), entry.samples))
        for pick in picks:
            window = ids[pick * body : (pick + 1) * body]
            rows.append(torch.cat([torch.tensor(bos, dtype=torch.long), window]))
            langs.append(entry.language)
        per_lang[entry.language] = {
            "source_key": key,
            "samples": entry.samples,
            "available_samples": n_windows,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "windows": picks,
        }

    input_ids = torch.stack(rows)
    hashes = [sample_hash(row) for row in input_ids]
    spec = {
        "mix": str(mix),
        "seqlen": seqlen,
        "seed": seed,
        "bos": bool(bos),
        "source": source.describe(),
        "languages": per_lang,
        "sample_hashes": hashes,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
    }
    return CalibrationSet(input_ids, langs, hashes, spec)


def _valid_languages(keys: Sequence[str]) -> list[str]:
    """Source keys that are language codes, normalised (a stray ``notes.txt`` is not a language)."""
    valid: list[str] = []
    for key in keys:
        try:
            valid.append(languages.normalize(key))
        except UnknownLanguageError:
            continue
    return sorted(set(valid))
