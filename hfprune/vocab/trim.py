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

from ..calibration import CalibrationSource, FolderSource, open_source
from ..constants import DEFAULT_MAX_SHARD_SIZE, METADATA_FILE, VERSION, VOCAB_MAP_FILE
from ..errors import InvalidOptionError, VocabVerificationError
from ..fingerprints import tokenizer_sha256
from ..io import (
    atomic_folder,
    check_output,
    portable_command,
    portable_path,
    write_json,
    write_local_record,
    write_record,
)
from ..models import ModelSource
from ..models.speed import measure_prompts
from ..system import library_versions, peak_memory
from .corpus import CorpusCounts, count_tokens
from .curve import CURVE_FILE, coverage_curve, plot_curve
from .families import TokenizerDefinition, read_definition
from .frequency import LanguageFrequencies, language_frequencies, parse_weights, rank_tokens, word_list_counts
from .model_surgery import gather_rows, referenced_ids, remap_config, vocabulary_rows
from .selection import Selection, select_tokens
from .settings import DEFAULT_OTHER_LANGUAGES, VocabSettings
from .tokenizer_surgery import rebuild_tokenizer, trimmed_definition
from .unicode_scripts import ScriptFilter, language_scripts
from .verify import (
    Forward,
    HeldOut,
    compare_tokenization,
    held_out_folder,
    load_held_out,
    logit_probe,
    other_languages,
    plain_forward,
)

#: Short codes of the reasons in ``vocab_map.json`` (one per kept token, in new-id order).
REASON_CODES = {
    "added": "A",
    "config": "C",
    "bytes": "B",
    "template": "T",
    "scripts": "S",
    "closure": "M",
    "corpus": "F",
}


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
            self.record["speed"][label] = measure_prompts(model, self.tokenizer, self.speed_prompts)


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
            ``prune``); ``None`` for hfprune's default calibration text.
        generation_config: the one to remap (default ``model.generation_config``).
        forward: how to get logits (a streamed model loads its blocks per call); default a plain forward.
        measure_after: time the trimmed model now (``prune`` times it after pruning instead).

    Raises:
        UnsupportedTokenizerError, NonStandardEmbeddingsError, UnknownScriptError, VocabSourceError,
        VocabSizeError: before anything of the model changes.
        VocabVerificationError: the trimmed model's logits differ; the model is left trimmed and must be discarded.
    """
    settings = dataclasses.replace(settings or VocabSettings(), **overrides)
    if not settings.langs:
        raise InvalidOptionError("trimming a vocabulary needs the languages to keep, e.g. langs='en,de,sw'")
    if generation_config is None:
        generation_config = getattr(model, "generation_config", None)
    started = time.perf_counter()
    plan = _plan(model, tokenizer, settings, source, generation_config)
    select_s = time.perf_counter() - started
    checks = _check_tokenization(tokenizer, plan, settings)
    in_memory = forward is None
    forward = forward or plain_forward
    speed: dict[str, Any] = {}
    if settings.measure_speed and in_memory:
        speed["before"] = measure_prompts(model, tokenizer, checks["prompts"])
    elif settings.measure_speed:
        speed["skipped"] = "the model is never whole in memory under --stream, so generation was not timed"
    checks["probe"].record_reference(model, plan.selection.keep, forward)

    started = time.perf_counter()
    surgery = gather_rows(model, plan.selection.keep)
    for config in {
        id(c): c for c in (model.config, generation_config, getattr(model, "generation_config", None))
    }.values():
        remap_config(config, plan.selection.mapping)
    surgery_s = time.perf_counter() - started
    logits = checks["probe"].compare(model, forward, model.get_input_embeddings().weight.dtype)
    if not logits["sentences"]:
        raise VocabVerificationError(
            "no held-out text of the kept languages could be fed to both models (no sentence tokenizes as before, "
            "no two original tokens in a row were kept); give a larger --vocab-source or --vocab-verify-source"
        )
    if not logits["passed"]:
        raise VocabVerificationError(
            f"the trimmed model's logits differ from the original's on the kept ids by {logits['max_abs_difference']:.3g}"
            f" (tolerance {logits['tolerance']:.3g}, {logits['sentences']} sentences compared); hfprune's surgery does "
            f"not fit {type(model).__name__}: nothing was written"
        )
    result = VocabTrimResult(
        plan.tokenizer, plan.selection.keep, [plan.selection.reasons[i] for i in plan.selection.keep], {}
    )
    result.speed_prompts = checks["prompts"] if "before" in speed else []
    result.record = {
        "languages": list(settings.langs or ()),
        "settings": settings.describe(),
        "family": plan.definition.family,
        "tokenizer_class": type(plan.tokenizer).__name__,
        "tokens_before": len(plan.definition.tokens),
        **surgery,
        "selection": plan.selection.describe(),
        "scripts": plan.scripts,
        "corpus": {
            "source": plan.corpus.source,
            "languages": {k: v.describe() for k, v in plan.corpus.languages.items()},
        },
        "per_language": _per_language(plan, checks["record"]["kept"]),
        "curve": coverage_curve(
            plan.selection.order,
            plan.selection.mandatory,
            len(plan.selection.keep),
            {lang: report.ids_before for lang, report in checks["reports"].items()},
            (surgery["rows_before"], surgery["rows_after"], surgery["parameters_before"], surgery["parameters_after"]),
        ),
        "verification": {**checks["record"], "logits": logits},
        "speed": speed,
        "tokenizer_sha256_before": tokenizer_sha256(tokenizer),
        "tokenizer_sha256_after": tokenizer_sha256(plan.tokenizer),
        "timings": {"select_s": select_s, "surgery_s": surgery_s},
    }
    if measure_after:
        result.measure_after(model)
    return result


@dataclass
class _Plan:
    """What will be kept, decided before the model is touched."""

    definition: TokenizerDefinition
    corpus: CorpusCounts
    frequencies: dict[str, LanguageFrequencies]
    scripts: dict[str, list[str]]
    held_out: HeldOut
    held_out_others: HeldOut
    folder: Path
    selection: Selection
    tokenizer: Any


def _plan(
    model: nn.Module, tokenizer: Any, settings: VocabSettings, source: CalibrationSource, generation: Any
) -> _Plan:
    """Check the inputs, count the corpus, choose the tokens and build the new tokenizer: every refusal happens
    here, before anything of the model changes."""
    langs = list(settings.langs or ())
    definition = read_definition(tokenizer)
    rows = vocabulary_rows(model)
    scripts = {lang: list(language_scripts(lang)) for lang in langs} if settings.scripts else {}
    text = open_source(settings.source if settings.source is not None else source, langs=langs)
    corpus = count_tokens(tokenizer, text, langs, settings.chars)
    folder = held_out_folder(settings.verify_source)
    _check_held_out_is_not_corpus(folder, text)
    held_out = load_held_out(folder, langs, settings.verify_sentences)
    others = list(settings.other_langs or other_languages(folder, langs, DEFAULT_OTHER_LANGUAGES))
    held_out_others = load_held_out(folder, others, settings.verify_sentences, required=bool(settings.other_langs))
    weights = parse_weights(langs, settings.weights)
    frequencies: dict[str, LanguageFrequencies] = {}

    def rank() -> list[int]:
        frequencies.update(_frequencies(tokenizer, corpus, settings))
        return rank_tokens(frequencies, weights, settings.coverage)

    selection = select_tokens(
        definition,
        rank,
        rows=rows,
        referenced=referenced_ids(model.config, generation),
        template=_template_ids(tokenizer),
        size=settings.size,
        scripts=ScriptFilter(s for group in scripts.values() for s in group) if scripts else None,
    )
    new_json = trimmed_definition(definition, selection.keep, selection.merges)
    trimmed = rebuild_tokenizer(tokenizer, new_json, selection.mapping)
    return _Plan(definition, corpus, frequencies, scripts, held_out, held_out_others, folder, selection, trimmed)


def _frequencies(tokenizer: Any, corpus: CorpusCounts, settings: VocabSettings) -> dict[str, LanguageFrequencies]:
    """Each kept language's token distribution: its running text, mixed with its word list when one exists."""
    found = {}
    for lang, counts in corpus.languages.items():
        listed = word_list_counts(tokenizer, lang, settings.list_words) if settings.word_lists else None
        found[lang] = language_frequencies(counts.counts, counts.describe(), listed, min_count=settings.min_count)
    return found


def _per_language(plan: _Plan, kept_report: dict[str, Any]) -> dict[str, Any]:
    """What the kept set means for each language: its tokens kept, the share of its occurrences covered in its
    frequency source and in its running text alone, and (measured) on held-out text."""
    kept = set(plan.selection.keep)
    out = {}
    for lang, frequencies in plan.frequencies.items():
        text = plan.corpus.languages[lang].counts
        text_total = sum(text.values())
        out[lang] = {
            "tokens_used": len(frequencies.shares),
            "tokens_kept": sum(1 for token in frequencies.shares if token in kept),
            "coverage_source": frequencies.coverage(kept),
            "coverage_running_text": sum(n for t, n in text.items() if t in kept) / text_total if text_total else None,
            "coverage_held_out": (kept_report.get(lang) or {}).get("token_coverage"),
            "sources": frequencies.sources,
        }
    return out


def _check_tokenization(tokenizer: Any, plan: _Plan, settings: VocabSettings) -> dict[str, Any]:
    """Held-out tokenization before and after (kept and other languages), the chat template, the sentences whose
    logits will be compared, and the prompt generation is timed on."""
    mapping = plan.selection.mapping
    kept = {
        lang: compare_tokenization(tokenizer, plan.tokenizer, mapping, lines)
        for lang, lines in plan.held_out.sentences.items()
    }
    others = {
        lang: compare_tokenization(tokenizer, plan.tokenizer, mapping, lines)
        for lang, lines in plan.held_out_others.sentences.items()
    }
    return {
        "record": {
            "held_out": {
                "folder": portable_path(str(plan.folder)),
                **plan.held_out.describe(),
                **plan.held_out_others.describe(),
            },
            "kept": {lang: report.describe() for lang, report in kept.items()},
            "not_kept": {lang: report.describe() for lang, report in others.items()},
            "chat_template": _chat_template_check(tokenizer, plan.tokenizer, mapping, _identical(plan.held_out, kept)),
        },
        "reports": kept,
        "probe": logit_probe(tokenizer, plan.tokenizer, mapping, plan.held_out, kept, settings.logit_sentences),
        "prompts": [_speed_prompt(plan.held_out)],
    }


def trim_vocab_pretrained(
    model: ModelSource | str,
    out: str | Path,
    settings: VocabSettings | None = None,
    *,
    overwrite: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    command: list[str] | None = None,
    **overrides: Any,
) -> VocabTrimResult:
    """Load ``model`` (a :class:`ModelSource`, or a Hub id or folder), trim its vocabulary and save it to ``out``
    atomically: the ``hfprune trim-vocab`` job. The output loads with ``AutoModelForCausalLM`` / ``AutoTokenizer``
    alone."""
    source = ModelSource.of(model)
    settings = dataclasses.replace(settings or VocabSettings(), **overrides)
    check_output(out, overwrite, reads=source.model)
    started = time.perf_counter()
    base_folder = source.folder()
    loaded = source.load()
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
            **({"command": portable_command(list(command))} if command else {}),
        }
        write_record(tmp / METADATA_FILE, metadata)
        if loaded.source.get("local"):
            write_local_record(tmp, base_folder)
    return result


def save_trimmed(folder: Path, result: VocabTrimResult, base_folder: Path | None = None) -> None:
    """Beside the saved weights: the trimmed tokenizer, ``vocab_map.json`` and the file sizes before and after."""
    result.tokenizer.save_pretrained(folder)
    if result.record.get("curve"):
        plot_curve(result.record["curve"], folder / CURVE_FILE)
    map_path = write_json(folder / VOCAB_MAP_FILE, result.id_map())
    result.record["map_file"] = {"name": VOCAB_MAP_FILE, "sha256": hashlib.sha256(map_path.read_bytes()).hexdigest()}
    result.record["files"] = {
        "safetensors_bytes_before": _safetensors_bytes(base_folder) if base_folder else None,
        "safetensors_bytes_after": _safetensors_bytes(folder),
    }


def _safetensors_bytes(folder: Path) -> int | None:
    files = list(Path(folder).glob("*.safetensors"))
    return sum(path.stat().st_size for path in files) if files else None


def _check_held_out_is_not_corpus(held_out: Path, corpus: Any) -> None:
    """The built-in check must read text the vocabulary was not chosen on (the record keeps only the corpus
    folder's name, so the opened source is compared, not the record)."""
    root = getattr(corpus, "root", None)
    if isinstance(corpus, FolderSource) and root is not None and Path(root).resolve() == held_out.resolve():
        raise InvalidOptionError(
            f"the held-out text ({held_out}) is the vocabulary corpus itself; verify on other text "
            "(--vocab-verify-source) or take the vocabulary from other text (--vocab-source)"
        )


def _template_skeleton(tokenizer: Any, contents: tuple[str, str] = ("", "")) -> str | None:
    """The chat template rendered for one user and one assistant turn (and the generation prompt)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": contents[0]}, {"role": "assistant", "content": contents[1]}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _template_ids(tokenizer: Any) -> set[int]:
    """Tokens of the chat template's own text (turn markers, role names, newlines): they must stay."""
    skeleton = _template_skeleton(tokenizer)
    return set(tokenizer(skeleton, add_special_tokens=False)["input_ids"]) if skeleton else set()


def _chat_template_check(before: Any, after: Any, mapping: dict[int, int], contents: list[str]) -> dict[str, Any]:
    """Render the chat template (when there is one) with both tokenizers: the same text, the same (mapped) ids for
    the template alone, and for messages made of held-out sentences that tokenize as before (``contents``).

    The last can differ even when both the template and the sentences are kept whole: a merge may join a
    template's newline with a message's first characters, through a token only that context uses."""
    if not getattr(before, "chat_template", None):
        return {"present": False}

    def same_ids(text: str) -> bool:
        old = before(text, add_special_tokens=False)["input_ids"]
        return [mapping.get(i, -1) for i in old] == list(after(text, add_special_tokens=False)["input_ids"])

    messages = tuple((contents + ["", ""])[:2])
    with_messages = _template_skeleton(before, messages)
    return {
        "present": True,
        "same_text": with_messages == _template_skeleton(after, messages),
        "same_ids": same_ids(_template_skeleton(before) or ""),
        "same_ids_with_messages": same_ids(with_messages or ""),
    }


def _identical(held_out: HeldOut, reports: dict[str, Any]) -> list[str]:
    """A few held-out sentences that tokenize exactly as before."""
    return [held_out.sentences[lang][i] for lang, report in reports.items() for i in report.identical_indices[:2]]


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
