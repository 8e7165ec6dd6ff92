"""Trim a model's vocabulary to the languages a user keeps: :func:`trim_vocab` in memory, :func:`trim_vocab_pretrained`
from a Hub id or folder to an output folder.

>>> result = hfprune.trim_vocab(model, tokenizer, langs="en,de,sw")
>>> result.tokenizer, result.record["selection"]["kept_tokens"]

Steps: count the tokens of the kept languages' text, decide which tokens stay (and why), rewrite the tokenizer,
check on held-out text how it tokenizes, record the original model's logits on identically tokenized sentences,
gather the embedding and output rows, remap every id in the configs, and check that the trimmed model gives the
same logits on the kept ids (fp32: max abs difference <= 1e-5). A failed check raises and nothing is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..calibration import CalibrationSource, open_source
from ..constants import DEFAULT_MAX_SHARD_SIZE, METADATA_FILE, VERSION, VOCAB_MAP_FILE
from ..errors import InvalidOptionError, VocabVerificationError
from ..io import atomic_folder, check_output, write_json
from ..models import checkpoint_folder, load_model
from ..system import library_versions, peak_memory
from .corpus import count_tokens
from .families import read_definition
from .model_surgery import gather_rows, referenced_ids, remap_config, vocabulary_rows
from .scripts import ScriptFilter, language_scripts
from .selection import select_tokens
from .settings import DEFAULT_OTHER_LANGUAGES, VocabSettings
from .speed import measure_generation
from .tokenizer_surgery import rebuild_tokenizer, trimmed_definition
from .verify import (
    Forward,
    compare_tokenization,
    held_out_folder,
    load_held_out,
    logit_probe,
    other_languages,
    plain_forward,
)

#: Short codes of the reasons in ``vocab_map.json`` (one per kept token, in new-id order).
REASON_CODES = {"added": "A", "config": "C", "bytes": "B", "scripts": "S", "closure": "M", "corpus": "F"}


@dataclass
class VocabTrimResult:
    """A trimmed model's new tokenizer, the old id of every new id, and the record ``hfprune.json`` keeps."""

    tokenizer: Any
    keep: list[int]
    reasons: list[str]
    record: dict[str, Any]
    #: prompts the speed was measured on (to measure the final model again after pruning)
    speed_prompts: list[str] = field(default_factory=list)

    @property
    def mapping(self) -> dict[int, int]:
        return {old: new for new, old in enumerate(self.keep)}

    def id_map(self) -> dict[str, Any]:
        """What ``vocab_map.json`` holds: for every new id its old id and why it was kept."""
        return {
            "base_vocab_rows": self.record["rows_before"],
            "old_ids": self.keep,
            "reasons": "".join(REASON_CODES[r] for r in self.reasons),
            "reason_codes": {code: reason for reason, code in REASON_CODES.items()},
        }

    def measure_after(self, model: nn.Module, label: str = "after") -> None:
        """Time the final model (after pruning too) and record it as this record's ``after`` speed."""
        if self.speed_prompts and "before" in self.record.get("speed", {}):
            self.record["speed"][label] = measure_generation(model, self.tokenizer, self.speed_prompts)


def trim_vocab(
    model: nn.Module,
    tokenizer: Any,
    settings: VocabSettings | None = None,
    *,
    source: CalibrationSource = None,
    generation_config: Any = None,
    forward: Forward | None = None,
    measure_after: bool = True,
    **overrides: Any,
) -> VocabTrimResult:
    """Trim ``model`` (in place) and return the new tokenizer with what was kept and how it checked out.

    Args:
        settings: what to keep (:class:`VocabSettings`); ``overrides`` set single fields (``langs="en,sw"``).
        source: the vocabulary corpus when ``settings.source`` is ``None`` (the calibration source, for
            ``prune``); ``None`` for the shared calibration corpora.
        generation_config: the one to remap (default ``model.generation_config``).
        forward: how to get logits (a streamed model loads its blocks per call); default a plain forward.
        measure_after: time the trimmed model now (``prune`` times it after pruning instead).

    Raises:
        UnsupportedTokenizerError, NonStandardEmbeddingsError, UnknownScriptError, VocabSourceError,
        VocabSizeError, VocabVerificationError (nothing of the model was changed when a check before the
        surgery fails; after a failed logits check the model is left trimmed and must be discarded).
    """
    settings = dataclasses.replace(settings or VocabSettings(), **overrides)
    if not settings.langs:
        raise InvalidOptionError("trimming a vocabulary needs the languages to keep, e.g. langs='en,de,sw'")
    langs = list(settings.langs)
    started = time.perf_counter()
    definition = read_definition(tokenizer)
    rows = vocabulary_rows(model)
    scripts = {lang: list(language_scripts(lang)) for lang in langs} if settings.scripts else {}
    corpus = count_tokens(
        tokenizer, open_source(settings.source if settings.source is not None else source, langs=langs), langs,
        settings.chars,
    )  # fmt: skip
    folder = held_out_folder(settings.verify_source)
    held_out = load_held_out(folder, langs, settings.verify_sentences)
    others = list(settings.other_langs or other_languages(folder, langs, DEFAULT_OTHER_LANGUAGES))
    held_out_others = load_held_out(
        folder, others, settings.verify_sentences, required=settings.other_langs is not None
    )
    _check_held_out_is_not_corpus(folder, corpus.source)
    generation_config = (
        generation_config if generation_config is not None else getattr(model, "generation_config", None)
    )
    selection = select_tokens(
        definition, corpus.total(), rows=rows, referenced=referenced_ids(model.config, generation_config),
        min_count=settings.min_count, size=settings.size,
        scripts=ScriptFilter(s for group in scripts.values() for s in group) if scripts else None,
    )  # fmt: skip
    mapping = selection.mapping
    trimmed = rebuild_tokenizer(tokenizer, trimmed_definition(definition, selection.keep, selection.merges), mapping)
    select_s = time.perf_counter() - started

    kept_reports = {
        lang: compare_tokenization(tokenizer, trimmed, mapping, lines) for lang, lines in held_out.sentences.items()
    }
    other_reports = {
        lang: compare_tokenization(tokenizer, trimmed, mapping, lines)
        for lang, lines in held_out_others.sentences.items()
    }
    chat = _chat_template_check(tokenizer, trimmed, mapping, held_out)
    probe = logit_probe(tokenizer, trimmed, held_out, kept_reports, settings.logit_sentences)
    prompts = [_speed_prompt(held_out)]
    in_memory = forward is None
    forward = forward or plain_forward
    speed: dict[str, Any] = {}
    if settings.measure_speed and in_memory:
        speed["before"] = measure_generation(model, tokenizer, prompts)
    elif settings.measure_speed:
        speed["skipped"] = "the model is never whole in memory under --stream, so generation was not timed"
    probe.record_reference(model, selection.keep, forward)

    started = time.perf_counter()
    surgery = gather_rows(model, selection.keep)
    remap_config(model.config, mapping)
    if generation_config is not None:
        remap_config(generation_config, mapping)
    if getattr(model, "generation_config", None) is not None and model.generation_config is not generation_config:
        remap_config(model.generation_config, mapping)
    surgery_s = time.perf_counter() - started
    logits = probe.compare(model, forward, model.get_input_embeddings().weight.dtype)
    if not logits["passed"]:
        raise VocabVerificationError(
            f"the trimmed model's logits differ from the original's on the kept ids by {logits['max_abs_difference']:.3g}"
            f" (tolerance {logits['tolerance']:.3g}); this is a bug in hfprune's surgery for {type(model).__name__}: "
            "nothing was written"
        )
    result = VocabTrimResult(trimmed, selection.keep, [selection.reasons[i] for i in selection.keep], {})
    result.speed_prompts = prompts if "before" in speed else []
    result.record = {
        "languages": langs,
        "settings": settings.describe(),
        "family": definition.family,
        "tokenizer_class": type(trimmed).__name__,
        "tokens_before": len(definition.tokens),
        **surgery,
        "selection": selection.describe(),
        "scripts": scripts,
        "corpus": {"source": corpus.source, "languages": {k: v.describe() for k, v in corpus.languages.items()}},
        "verification": {
            "held_out": {"folder": str(folder), **held_out.describe(), **held_out_others.describe()},
            "kept": {lang: report.describe() for lang, report in kept_reports.items()},
            "not_kept": {lang: report.describe() for lang, report in other_reports.items()},
            "logits": logits,
            "chat_template": chat,
        },
        "speed": speed,
        "tokenizer_sha256_before": _tokenizer_hash(tokenizer),
        "tokenizer_sha256_after": _tokenizer_hash(trimmed),
        "timings": {"select_s": select_s, "surgery_s": surgery_s},
    }
    if measure_after:
        result.measure_after(model)
    return result


def trim_vocab_pretrained(
    model_id: str,
    out: str | Path,
    settings: VocabSettings | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    command: list[str] | None = None,
    **overrides: Any,
) -> VocabTrimResult:
    """Load ``model_id`` (Hub id or folder), trim its vocabulary and save it to ``out`` atomically: the
    ``hfprune trim-vocab`` job. The output loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` alone."""
    settings = dataclasses.replace(settings or VocabSettings(), **overrides)
    check_output(out, overwrite)
    started = time.perf_counter()
    base_folder = checkpoint_folder(model_id, revision=revision, token=token)
    loaded = load_model(model_id, revision=revision, token=token, trust_remote_code=trust_remote_code, dtype=dtype)
    load_s = time.perf_counter() - started
    result = trim_vocab(loaded.model, loaded.tokenizer, settings)
    with atomic_folder(out, overwrite=overwrite) as tmp:
        loaded.model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        save_trimmed(tmp, result, base_folder=base_folder)
        metadata = {
            "hfprune_version": VERSION,
            "kind": "trim-vocab",
            "base_model": loaded.source,
            "vocab": result.record,
            "timings": {"load_s": load_s, **result.record["timings"]},
            "peak_memory": peak_memory(torch.device("cpu")),
            "versions": library_versions(),
            **({"command": list(command)} if command else {}),
        }
        write_json(tmp / METADATA_FILE, metadata)
    return result


def save_trimmed(folder: Path, result: VocabTrimResult, base_folder: Path | None = None) -> None:
    """Beside the saved weights: the trimmed tokenizer, ``vocab_map.json`` and the file sizes before and after."""
    result.tokenizer.save_pretrained(folder)
    map_path = write_json(folder / VOCAB_MAP_FILE, result.id_map())
    result.record["map_file"] = {"name": VOCAB_MAP_FILE, "sha256": hashlib.sha256(map_path.read_bytes()).hexdigest()}
    result.record["files"] = {
        "safetensors_bytes_before": _safetensors_bytes(base_folder) if base_folder else None,
        "safetensors_bytes_after": _safetensors_bytes(folder),
    }


def _safetensors_bytes(folder: Path) -> int | None:
    files = list(Path(folder).glob("*.safetensors"))
    return sum(path.stat().st_size for path in files) if files else None


def _check_held_out_is_not_corpus(held_out: Path, corpus_source: dict[str, Any]) -> None:
    path = corpus_source.get("path")
    if corpus_source.get("kind") == "folder" and path and Path(path).resolve() == held_out.resolve():
        raise InvalidOptionError(
            f"the held-out text ({held_out}) is the vocabulary corpus itself; verify on other text "
            "(--vocab-verify-source) or take the vocabulary from other text (--vocab-source)"
        )


def _chat_template_check(before: Any, after: Any, mapping: dict[int, int], held_out: Any) -> dict[str, Any]:
    """Apply the chat template (when there is one) with both tokenizers: same text, same (mapped) ids."""
    if not getattr(before, "chat_template", None):
        return {"present": False}
    first = next(iter(held_out.sentences.values()))
    messages = [{"role": "user", "content": first[0]}, {"role": "assistant", "content": first[1]}]
    text_before = before.apply_chat_template(messages, tokenize=False)
    text_after = after.apply_chat_template(messages, tokenize=False)
    ids_before = before(text_before, add_special_tokens=False)["input_ids"]
    ids_after = after(text_after, add_special_tokens=False)["input_ids"]
    return {
        "present": True,
        "same_text": text_before == text_after,
        "same_ids": [mapping.get(i, -1) for i in ids_before] == list(ids_after),
    }


def _speed_prompt(held_out: Any, chars: int = 400) -> str:
    """One prompt for timing: the first sentences of every kept language, about ``chars`` characters long."""
    parts: list[str] = []
    per_language = max(chars // max(len(held_out.sentences), 1), 1)
    for lines in held_out.sentences.values():
        text = ""
        for line in lines:
            if len(text) >= per_language:
                break
            text = f"{text} {line}".strip()
        parts.append(text[:per_language])
    return " ".join(parts)


def _tokenizer_hash(tokenizer: Any) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()
