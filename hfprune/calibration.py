"""Calibration text: a language mix -> reproducible token samples, each tagged with its language.

The pruning engine keeps activation statistics per language, so every sample carries the language it
was drawn from. Samples are non-overlapping windows of ``seqlen`` tokens cut from each language's text and
picked with a seeded RNG: the same source, tokenizer, mix, length and seed give the same samples, and their
hashes are recorded so anyone can check.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from . import languages, paths
from .errors import (
    CalibrationMixError,
    CalibrationSourceError,
    NotEnoughCalibrationTextError,
    UnknownLanguageError,
)

#: Samples drawn when the user gives no mix: spread evenly over the languages the source holds.
DEFAULT_TOTAL_SAMPLES = 128
DEFAULT_SEQLEN = 512


# --- the mix ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MixEntry:
    language: str
    samples: int


def parse_mix(spec: str) -> list[MixEntry]:
    """Parse ``"en:64,sw:64"`` into entries, refusing anything ambiguous.

    Raises:
        CalibrationMixError: empty entries, missing or non-positive counts, a language given twice.
        UnknownLanguageError: a code that is not a language.
    """
    entries: list[MixEntry] = []
    seen: dict[str, str] = {}
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise CalibrationMixError(f"calibration mix '{spec}' has an empty entry; write it as 'en:64,sw:64'")
    for part in parts:
        lang, sep, count = part.partition(":")
        if not sep or not lang.strip() or not count.strip():
            raise CalibrationMixError(
                f"calibration mix entry '{part}' must be LANG:N_SAMPLES, e.g. 'sw:64'"
            )
        try:
            n = int(count)
        except ValueError:
            n = -1
        if n <= 0:
            raise CalibrationMixError(
                f"calibration mix entry '{part}': the number of samples must be a positive integer"
            )
        code = languages.normalize(lang)
        if code in seen:
            raise CalibrationMixError(
                f"calibration mix names {code} twice ('{seen[code]}' and '{part}'); give each language once"
            )
        seen[code] = part
        entries.append(MixEntry(code, n))
    return entries


def even_mix(langs: Sequence[str], total: int = DEFAULT_TOTAL_SAMPLES) -> list[MixEntry]:
    """``total`` samples spread as evenly as possible over ``langs`` (sorted; the first get the remainder)."""
    ordered = sorted(langs)
    if not ordered:
        raise CalibrationSourceError("the calibration source holds no languages")
    base, extra = divmod(total, len(ordered))
    return [MixEntry(lang, base + (i < extra)) for i, lang in enumerate(ordered) if base + (i < extra) > 0]


def format_mix(entries: Sequence[MixEntry]) -> str:
    return ",".join(f"{e.language}:{e.samples}" for e in entries)


# --- sources ------------------------------------------------------------------------------------------
class TextSource(Protocol):
    """Where calibration text comes from."""

    def languages(self) -> list[str]:
        """Language keys this source can provide (as named by the source)."""

    def documents(self, lang: str, min_chars: int) -> list[str]:
        """Documents of ``lang`` (a source key), at least ``min_chars`` characters where available."""

    def describe(self) -> dict[str, Any]:
        """What to record so the calibration can be reproduced."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FolderSource:
    """A folder of ``{lang}.txt`` (one document per line) or ``{lang}.jsonl`` (a ``text`` field) files.

    Sub-folders one level down are read too, in sorted order, so ``shared/data/calib`` with its
    ``ntrex/``, ``xquad_wiki/`` and ``udhr/`` corpora acts as one source per language.
    """

    def __init__(self, root: Path, text_field: str = "text") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CalibrationSourceError(f"calibration folder {self.root} does not exist")
        self.text_field = text_field
        self._files: dict[str, list[Path]] = {}
        folders = [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]
        for folder in folders:
            for path in sorted(folder.iterdir()):
                if path.suffix in (".txt", ".jsonl") and path.is_file():
                    self._files.setdefault(path.stem, []).append(path)
        if not self._files:
            raise CalibrationSourceError(
                f"calibration folder {self.root} holds no {{lang}}.txt or {{lang}}.jsonl files"
            )

    def languages(self) -> list[str]:
        return sorted(self._files)

    def documents(self, lang: str, min_chars: int) -> list[str]:
        docs: list[str] = []
        for path in self._files[lang]:
            if path.suffix == ".txt":
                docs.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    docs.append(str(json.loads(line)[self.text_field]))
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise CalibrationSourceError(
                        f"{path}:{n}: expected a JSON object with a '{self.text_field}' field ({err})"
                    ) from err
        return docs

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "folder",
            "path": str(self.root),
            "files": {
                str(p.relative_to(self.root)): _sha256(p) for files in self._files.values() for p in files
            },
        }


class DatasetSource:
    """A ``datasets`` dataset with one config per language (mC4, CulturaX, Wikipedia style).

    ``config_pattern`` names the config of a language (``"{lang}"``, ``"20231101.{lang}"``). The split
    is streamed and read only until enough text is there, so a multi-terabyte corpus costs a few MB.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        langs: Sequence[str],
        config_pattern: str = "{lang}",
        split: str = "train",
        text_field: str = "text",
        revision: str | None = None,
    ) -> None:
        self.dataset_id = dataset_id
        self._langs = list(langs)
        self.config_pattern = config_pattern
        self.split = split
        self.text_field = text_field
        self.revision = revision

    def languages(self) -> list[str]:
        return list(self._langs)

    def documents(self, lang: str, min_chars: int) -> list[str]:
        import datasets  # heavy import: only when this source is used

        config = self.config_pattern.format(lang=lang)
        try:
            stream = datasets.load_dataset(
                self.dataset_id, config, split=self.split, streaming=True, revision=self.revision
            )
        except Exception as err:  # datasets raises many types; all mean "this config is not there"
            raise CalibrationSourceError(
                f"cannot open dataset '{self.dataset_id}' config '{config}' split '{self.split}': {err}"
            ) from err
        docs: list[str] = []
        chars = 0
        for row in stream:
            text = row.get(self.text_field)
            if not text:
                continue
            docs.append(str(text))
            chars += len(docs[-1])
            if chars >= min_chars:
                break
        return docs

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "datasets",
            "dataset": self.dataset_id,
            "config_pattern": self.config_pattern,
            "split": self.split,
            "text_field": self.text_field,
            "revision": self.revision,
        }


_DATASET_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def default_source() -> FolderSource:
    """The calibration corpora shipped beside the project (``shared/data/calib``)."""
    data = paths.default_data_dir()
    if data is None or not (data / "calib").is_dir():
        raise CalibrationSourceError(
            "no calibration source given and no shared data folder found; pass --calib-source DIR "
            f"(a folder of {{lang}}.txt files) or set {paths.DATA_DIR_ENV}"
        )
    return FolderSource(data / "calib")


def open_source(
    spec: str | Path | None,
    *,
    langs: Sequence[str] = (),
    config_pattern: str = "{lang}",
    split: str = "train",
    text_field: str = "text",
    revision: str | None = None,
) -> TextSource:
    """A local folder, a ``datasets`` id (``hf://datasets/ID`` or a bare ``owner/name``), or the default."""
    if spec is None:
        return default_source()
    text = str(spec)
    if Path(text).expanduser().is_dir():
        return FolderSource(Path(text).expanduser(), text_field=text_field)
    dataset_id = text.removeprefix("hf://datasets/")
    if not _DATASET_ID.fullmatch(dataset_id):
        raise CalibrationSourceError(
            f"calibration source '{text}' is neither an existing folder nor a dataset id (owner/name)"
        )
    if not langs:
        raise CalibrationSourceError(
            f"a dataset source ('{dataset_id}') needs an explicit --calib mix: it cannot list its languages"
        )
    return DatasetSource(
        dataset_id,
        langs=langs,
        config_pattern=config_pattern,
        split=split,
        text_field=text_field,
        revision=revision,
    )


# --- sampling -----------------------------------------------------------------------------------------
@dataclass
class CalibrationSet:
    """Token samples of equal length, each with its language: what the engine consumes."""

    input_ids: torch.Tensor  # [n_samples, seqlen], int64
    languages: list[str]  # one per sample
    sample_hashes: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)  # mix, source, seqlen, seed, hashes: for hfprune.json

    def __post_init__(self) -> None:
        if self.input_ids.ndim != 2 or self.input_ids.shape[0] != len(self.languages):
            raise ValueError("input_ids must be [n_samples, seqlen] with one language per sample")

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
        spec = {"kind": "tensors", "samples": len(ids), "seqlen": ids.shape[1], "languages": list(languages_),
                "sample_hashes": hashes}  # fmt: skip
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
    mix: Sequence[MixEntry] | str | None = None,
    *,
    seqlen: int = DEFAULT_SEQLEN,
    seed: int = 0,
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
    if isinstance(mix, str):
        mix = parse_mix(mix)
    if mix is None:
        mix = even_mix(_valid_languages(source.languages()))
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
            )
        docs = source.documents(key, min_chars=entry.samples * body * 8)
        text = "\n".join(docs)
        if not text.strip():
            raise CalibrationSourceError(f"the calibration text for '{entry.language}' is empty")
        ids = torch.tensor(tokenizer(text, add_special_tokens=False).input_ids, dtype=torch.long)
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
        "mix": format_mix(mix),
        "seqlen": seqlen,
        "seed": seed,
        "bos": bool(bos),
        "source": source.describe(),
        "languages": per_lang,
        "sample_hashes": hashes,
        "tokenizer_sha256": _tokenizer_hash(tokenizer),
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


def _tokenizer_hash(tokenizer: Any) -> str | None:
    """Hash of the tokenizer's vocabulary and merges, so recorded sample hashes can be trusted."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    return hashlib.sha256(backend.to_str().encode()).hexdigest()
