"""The built-in check of a trimmed vocabulary, on held-out text (FLORES devtest by default, never the corpus).

Per language: the share of sentences the trimmed tokenizer splits exactly as the original did (ids mapped),
tokens per byte before and after (how much longer text gets where it does not), and, on identically tokenized
sentences of every kept language, whether the trimmed model's logits equal the original's restricted to the
kept ids. Languages that were not kept are measured too: the card says what trimming cost them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..calibration import match
from ..calibration.held_out import HeldOut, available_languages, flores_folders, folder_entry, read_held_out
from ..constants import DATA_DIR_ENV
from ..data_sources import data_roots, tried
from ..errors import VocabSourceError
from .unicode_scripts import language_scripts

#: model, input ids [1, n] -> logits [1, n, vocabulary]
Forward = Callable[[Any, torch.Tensor], torch.Tensor]
#: Largest max-abs logit difference accepted in fp32 (other dtypes: a few of their own rounding steps).
FP32_TOLERANCE = 1e-5
#: Below this share of kept-language held-out sentences tokenized as before, users are told their vocabulary
#: text is too small: every changed split is one the model never saw in training, and costs quality.
LOW_IDENTICAL_SHARE = 0.9


def poorly_covered(kept: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Kept languages whose held-out text mostly tokenizes differently now: language -> identical share."""
    return {
        lang: row["identical_share"]
        for lang, row in kept.items()
        if row.get("identical_share") is not None and row["identical_share"] < LOW_IDENTICAL_SHARE
    }


def coverage_advice(kept: dict[str, dict[str, Any]]) -> str | None:
    """The warning for :func:`poorly_covered` languages, or ``None``."""
    low = poorly_covered(kept)
    if not low:
        return None
    shares = ", ".join(f"{lang} {share:.0%}" for lang, share in low.items())
    return (
        f"only {shares} of held-out sentences tokenize as before: the vocabulary text is too small for these "
        "languages, and splits the model never saw in training cost quality (compare bits per byte with "
        "`hfprune eval`); use a larger --vocab-source or --vocab-scripts"
    )


def held_out_folder(source: str | Path | None) -> Path:
    """``source``, or the FLORES devtest folder of the first data folder that has one (``$HFPRUNE_DATA_DIR``, then
    the data shipped with hfprune).

    Raises:
        VocabSourceError: no folder given and no data folder has FLORES, or the folder does not exist.
    """
    if source is None:
        roots = data_roots()
        for root in roots:
            if (root.path / "flores").is_dir():
                return root.path / "flores"
        raise VocabSourceError(
            "the trimmed vocabulary is verified on held-out text (FLORES devtest by default), and no data folder has "
            f"it (tried {tried(roots, None)}); pass --vocab-verify-source DIR (a folder of {{lang}}.txt files) or "
            f"set {DATA_DIR_ENV}"
        )
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise VocabSourceError(f"the held-out text folder {folder} does not exist")
    return folder


def load_held_out(folder: Path, langs: Sequence[str], sentences: int | None, *, required: bool = True) -> HeldOut:
    """The first ``sentences`` lines of each language's file in ``folder`` (``{lang}.devtest.txt`` or
    ``{lang}.txt``), recorded by the data root's name or the folder's own name.

    Raises:
        VocabSourceError: ``required`` and a language has no file (the message lists those there are).
    """
    held_out = read_held_out(langs, sentences, [_entry(folder)])
    missing = held_out.missing(langs)
    if required and missing:
        raise VocabSourceError(
            f"no held-out text for kept language '{missing[0]}' in {folder} (it has: "
            f"{', '.join(available_languages(folder)) or 'nothing'}); pass --vocab-verify-source with a folder of "
            "{lang}.txt files"
        )
    return held_out


def _entry(folder: Path) -> tuple[str, Path]:
    """A data root's FLORES folder by the root's name (``shipped:flores``), any other by its own name."""
    for name, known in flores_folders():
        if known.resolve() == folder.resolve():
            return name, folder
    return folder_entry(folder)


def other_languages(folder: Path, kept: Sequence[str], wanted: int) -> list[str]:
    """Languages of the held-out folder that were not kept: first one sharing a kept script, then others."""
    kept_scripts = set()
    for lang in kept:
        try:
            kept_scripts.update(language_scripts(lang))
        except Exception:  # noqa: BLE001 - an unknown script only changes which languages are picked
            continue
    kept_keys = {match(lang, available_languages(folder)) for lang in kept}
    candidates = [name for name in available_languages(folder) if name not in kept_keys]

    def shares_script(name: str) -> bool:
        try:
            return bool(set(language_scripts(name)) & kept_scripts)
        except Exception:  # noqa: BLE001
            return False

    same = [name for name in candidates if shares_script(name)]
    other = [name for name in candidates if not shares_script(name)]
    picked: list[str] = []
    while len(picked) < wanted and (same or other):
        for pool in (same, other):
            if pool and len(picked) < wanted:
                picked.append(pool.pop(0))
    return picked


@dataclass
class TokenizationReport:
    """How one language's held-out sentences tokenize before and after."""

    sentences: int
    identical: int
    tokens_before: int
    tokens_after: int
    n_bytes: int
    unknown_before: int = 0
    unknown_after: int = 0
    #: original token occurrences whose token was kept (the share of the text the kept set covers)
    covered: int = 0
    identical_indices: list[int] = field(default_factory=list, repr=False)
    #: the sentences in the original tokenizer's ids (no special tokens): what the size/coverage curve reads
    ids_before: list[list[int]] = field(default_factory=list, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "sentences": self.sentences,
            "identical": self.identical,
            "identical_share": self.identical / self.sentences if self.sentences else None,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "bytes": self.n_bytes,
            "tokens_per_byte_before": self.tokens_before / self.n_bytes if self.n_bytes else None,
            "tokens_per_byte_after": self.tokens_after / self.n_bytes if self.n_bytes else None,
            "tokens_change": self.tokens_after / self.tokens_before - 1 if self.tokens_before else None,
            "token_coverage": self.covered / self.tokens_before if self.tokens_before else None,
            "unknown_before": self.unknown_before,
            "unknown_after": self.unknown_after,
        }


def compare_tokenization(before: Any, after: Any, mapping: dict[int, int], lines: list[str]) -> TokenizationReport:
    """Encode ``lines`` with both tokenizers (special tokens included: BOS and templates are checked too)."""
    old = before(lines, verbose=False)["input_ids"]
    new = after(lines, verbose=False)["input_ids"]
    plain_before = before(lines, add_special_tokens=False, verbose=False)["input_ids"]
    plain_after = after(lines, add_special_tokens=False, verbose=False)["input_ids"]
    identical = [i for i, (a, b) in enumerate(zip(old, new)) if [mapping.get(t, -1) for t in a] == b]
    return TokenizationReport(
        sentences=len(lines),
        identical=len(identical),
        tokens_before=sum(map(len, plain_before)),
        tokens_after=sum(map(len, plain_after)),
        n_bytes=sum(len(line.encode("utf-8")) for line in lines),
        unknown_before=_count(plain_before, before.unk_token_id),
        unknown_after=_count(plain_after, after.unk_token_id),
        covered=sum(1 for ids in plain_before for t in ids if t in mapping),
        identical_indices=identical,
        ids_before=plain_before,
    )


def _count(encoded: list[list[int]], token_id: int | None) -> int:
    """How often ``token_id`` (the unknown token) occurs; 0 for a tokenizer without one."""
    return 0 if token_id is None else sum(ids.count(token_id) for ids in encoded)


def plain_forward(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids, use_cache=False).logits


@dataclass
class LogitProbe:
    """Sentences whose tokenization did not change, with the original model's logits on the kept ids."""

    old_ids: list[torch.Tensor]
    new_ids: list[torch.Tensor]
    languages: list[str]
    reference: list[torch.Tensor] = field(default_factory=list)
    #: how many of them are runs of kept tokens (for languages without an identically tokenized sentence)
    prefixes: int = 0

    def add(self, lang: str, old: list[int], new: list[int]) -> None:
        self.old_ids.append(torch.tensor([old], dtype=torch.long))
        self.new_ids.append(torch.tensor([new], dtype=torch.long))
        self.languages.append(lang)

    def record_reference(self, model: Any, keep: list[int], forward: Forward) -> None:
        index = torch.tensor(keep, dtype=torch.long)
        self.reference = [forward(model, ids)[0][:, index].float() for ids in self.old_ids]

    def compare(self, model: Any, forward: Forward, dtype: torch.dtype) -> dict[str, Any]:
        worst = 0.0
        largest = 0.0
        for ids, reference in zip(self.new_ids, self.reference):
            logits = forward(model, ids)[0].float()
            worst = max(worst, float((logits - reference).abs().max()))
            largest = max(largest, float(reference.abs().max()))
        tolerance = FP32_TOLERANCE if dtype == torch.float32 else 4 * torch.finfo(dtype).eps * max(largest, 1.0)
        return {
            "sentences": len(self.new_ids),
            "kept_token_runs": self.prefixes,
            "languages": sorted(set(self.languages)),
            "tokens": int(sum(ids.numel() for ids in self.new_ids)),
            "dtype": str(dtype).replace("torch.", ""),
            "max_abs_difference": worst,
            "tolerance": tolerance,
            "passed": worst <= tolerance and bool(self.new_ids),
        }


def logit_probe(
    before: Any,
    after: Any,
    mapping: dict[int, int],
    held_out: HeldOut,
    reports: dict[str, TokenizationReport],
    per_language: int,
) -> LogitProbe:
    """Up to ``per_language`` identically tokenized sentences of each kept language.

    A language none of whose sentences tokenizes identically (a small vocabulary corpus) is still checked: on the
    longest run of its original tokens that were all kept (among its first sentences), fed as their new ids.
    """
    probe = LogitProbe([], [], [])
    for lang, report in reports.items():
        for index in report.identical_indices[:per_language]:
            line = held_out.sentences[lang][index]
            probe.add(lang, before(line)["input_ids"], after(line)["input_ids"])
        if not report.identical_indices:
            run = _longest_kept_run(before(held_out.sentences[lang][:100])["input_ids"], mapping)
            if len(run) >= 2:
                probe.add(lang, run, [mapping[token] for token in run])
                probe.prefixes += 1
    return probe


def _longest_kept_run(encoded: list[list[int]], mapping: dict[int, int]) -> list[int]:
    best: list[int] = []
    for ids in encoded:
        for keep, group in itertools.groupby(ids, key=lambda token: token in mapping):
            run = list(group)
            if keep and len(run) > len(best):
                best = run
    return best
