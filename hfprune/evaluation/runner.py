"""The library entry of per-language evaluation: ``evaluate_model`` for one model, ``compare`` for two.

For every requested (task, language) the runner finds the data, asks the cache, and otherwise scores:
perplexity on one document per language, zero-shot tasks by choice log-likelihood. A language a task's
data lacks is skipped with a note; a language no requested task knows is an error listing those that exist.

Under a launcher every rank runs the same evaluation and scores its share of each task's batches
(:mod:`~hfprune.evaluation.sharding`); rank 0 alone reads and fills the cache and decides for all ranks, so
they always take the same steps, and every rank returns the same :class:`EvalResult`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hfprune import distributed

from ..data_sources import offline_reason, tried
from ..errors import BaselineMismatchError, HubDataError, LanguageNotAvailableError
from ..system import library_versions
from .cache import ResultCache
from .data import resolve_roots
from .fingerprint import (
    linear_sparsity,
    model_sha256,
    parameter_count,
    tokenizer_sha256,
)
from .limits import check_context_length
from .perplexity import perplexity
from .results import (
    PER_TOKEN_METRICS,
    TOKENIZERS_DIFFER,
    ChangeRow,
    Comparison,
    EvalResult,
    MetricSummary,
    Skipped,
    TaskLanguageResult,
)
from .sources import PerplexitySource
from .task_data import (
    check_task_source,
    hub_allowed,
    listed_languages,
    load_task_data,
    local_languages,
)
from .tasks import HEADLINE_METRICS, PPL, TASKS, parse_tasks
from .zeroshot import evaluate_task, model_scorer

logger = logging.getLogger(__name__)


def evaluate_model(
    model: Any,
    tokenizer: Any,
    *,
    langs: Iterable[str],
    tasks: Iterable[str] | str = (PPL,),
    data_dir: str | Path | None = None,
    ppl_source: str = "flores",
    context_length: int = 512,
    stride: int | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    device: Any = None,
    cache: ResultCache | None | bool = True,
    hub_data: bool | None = None,
    progress: bool = True,
    model_name: str | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on every requested task in every requested language.

    Args:
        langs: ISO 639-1 codes, e.g. ``["en", "de", "sw"]``.
        tasks: task names (``ppl``, ``xcopa``, ...) or one comma-separated string; ``"all"`` for every task.
        data_dir: the data folder (then only it is read); default ``$HFPRUNE_DATA_DIR`` and the data shipped with
            hfprune, in that order (see :mod:`hfprune.data_sources`).
        ppl_source: ``flores``, a folder of ``{lang}.txt`` or ``hf:ID[:CONFIG[:SPLIT[:COLUMN]]]``.
        context_length, stride: perplexity windows (see :func:`~hfprune.evaluation.perplexity.perplexity`).
        limit: at most this many items (sentences for perplexity) per language and task.
        cache: ``True`` for the default cache folder, a :class:`ResultCache`, or ``False``/``None`` for none.
        hub_data: fetch with ``datasets`` what the data folders lack: ``None`` whenever online, or as given.
        on_skip: called for each (task, language) that has no data; default logs a warning.

    Raises:
        UnknownTaskError, LanguageNotAvailableError, DataFileMissingError, ContextLengthError, EmptyTextError.
    """
    started = time.perf_counter()
    task_names = parse_tasks(tasks if isinstance(tasks, str) else list(tasks))
    languages = _parse_langs(langs)
    roots = resolve_roots(data_dir)
    source = PerplexitySource(ppl_source)
    check_evaluation_data(languages, task_names, data_dir=roots, ppl_source=ppl_source, hub_data=hub_data)
    if PPL in task_names:
        check_context_length(model, context_length)
    store = ResultCache() if cache is True else (cache or None)
    model_hash, tok_hash = model_sha256(model), tokenizer_sha256(tokenizer)
    settings = {
        "langs": languages,
        "tasks": task_names,
        "data_dir": [root.name for root in roots],
        "ppl_source": ppl_source,
        "context_length": context_length,
        "stride": stride if stride is not None else context_length - 1,
        "limit": limit,
        "batch_size": batch_size,
    }
    scorer = model_scorer(model, tokenizer, batch_size=batch_size, device=device, progress=progress)
    results, skipped = [], []
    for task in task_names:
        for lang in languages:
            began = time.perf_counter()
            if task == PPL:
                outcome = _run_ppl(
                    model,
                    tokenizer,
                    lang,
                    roots,
                    source,
                    hub_data,
                    settings,
                    device,
                    progress,
                    store,
                    model_hash,
                    tok_hash,
                )
            else:
                outcome = _run_task(task, lang, roots, hub_data, limit, scorer, store, model_hash, tok_hash)
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
                (on_skip or _log_skip)(outcome)
                continue
            outcome.seconds = 0.0 if outcome.cached else time.perf_counter() - began
            results.append(outcome)
    return EvalResult(
        distributed=distributed.describe(),
        model={
            "name": model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model",
            "sha256": model_hash,
            "tokenizer_sha256": tok_hash,
            "parameters": parameter_count(model),
            "sparsity": linear_sparsity(model),
            "architecture": type(model).__name__,
        },
        settings=settings,
        results=results,
        skipped=skipped,
        versions=library_versions(),
        seconds=time.perf_counter() - started,
    )


def compare(pruned: EvalResult, dense: EvalResult) -> Comparison:
    """Per-language changes from ``dense`` to ``pruned`` on every (task, language) both evaluated.

    Raises:
        BaselineMismatchError: the two were scored on different data (a data file's sha256 differs).
    """
    rows: list[ChangeRow] = []
    tokenizers_differ = dense.model.get("tokenizer_sha256") != pruned.model.get("tokenizer_sha256")
    for result in pruned.results:
        base = dense.get(result.task, result.lang)
        if base is None:
            continue
        if base.data_sha256 != result.data_sha256 or _size(base, tokenizers_differ) != _size(result, tokenizers_differ):
            raise BaselineMismatchError(
                f"{result.task}/{result.lang} was scored on different data for the dense and the pruned model "
                "(different files or --limit); evaluate both with the same --data and --limit"
            )
        for metric in HEADLINE_METRICS.get(result.task, ()):
            if metric in result.metrics and metric in base.metrics:
                blocked = TOKENIZERS_DIFFER if tokenizers_differ and metric in PER_TOKEN_METRICS else None
                rows.append(
                    ChangeRow(result.task, metric, result.lang, base.metrics[metric], result.metrics[metric], blocked)
                )
    return Comparison(dense=dense, pruned=pruned, rows=rows, summaries=_summaries(rows))


def _size(result: TaskLanguageResult, tokenizers_differ: bool) -> Any:
    """What must match for two results to be on the same data: items, or for perplexity under two tokenizers
    (whose token counts differ by design) the bytes of text scored."""
    if result.task == PPL and tokenizers_differ:
        return result.metrics.get("n_bytes")
    return result.n


def _run_ppl(model, tokenizer, lang, roots, source, hub_data, settings, device, progress, store, model_hash, tok_hash):
    try:
        loaded = source.load(lang, roots, settings["limit"], hub=hub_data)
    except HubDataError as error:
        if hub_data is not None or source.kind == "hub":
            raise  # the user asked for the Hub: its failure is the answer
        return Skipped(PPL, lang, f"no data folder has {lang!r}, and the Hub could not be read: {error}")
    if loaded is None:
        return Skipped(PPL, lang, f"the perplexity source {source.spec!r} has no text for {lang!r}")
    key = {
        **{k: settings[k] for k in ("context_length", "stride", "limit")},
        "source": source.spec,
        "sha256": loaded.sha256 or loaded.source,
        "tokenizer": tok_hash,
    }
    cached = _cached(store, model_hash, PPL, lang, key)
    if cached is None:
        scored = perplexity(
            model,
            tokenizer,
            loaded.text,
            context_length=settings["context_length"],
            stride=settings["stride"],
            batch_size=settings["batch_size"],
            device=device,
            progress=progress,
        )
        metrics = {
            "ppl": scored.ppl,
            "ppl_stderr": scored.ppl_stderr,
            "bits_per_byte": scored.bits_per_byte,
            "bits_per_byte_stderr": scored.bits_per_byte_stderr,
            "nll_sum": scored.nll_sum,
            "n_tokens": scored.n_tokens,
            "n_bytes": scored.n_bytes,
            "n_windows": scored.n_windows,
        }
        n = scored.n_tokens
        _store(store, model_hash, PPL, lang, key, {"metrics": metrics, "n": n})
    else:
        metrics, n = cached["metrics"], cached["n"]
    split = "devtest" if source.kind == "flores" else None
    return TaskLanguageResult(PPL, lang, metrics, n, split, loaded.source, loaded.sha256, cached=cached is not None)


def _run_task(task, lang, roots, hub_data, limit, scorer, store, model_hash, tok_hash):
    spec = TASKS[task]
    try:
        data = load_task_data(spec, lang, roots, hub=hub_data, limit=limit)
    except HubDataError as error:
        if hub_data is not None:
            raise  # the user asked for the Hub: its failure is the answer
        return Skipped(task, lang, f"no data folder has {task}/{lang}, and the Hub could not be read: {error}")
    if data is None:
        have = ", ".join(local_languages(spec, roots)) or "none"
        return Skipped(task, lang, f"{task} has no data for {lang!r} (languages in the data folders: {have})")
    key = {"split": data.split, "sha256": data.sha256 or data.source, "limit": limit, "tokenizer": tok_hash}
    cached = _cached(store, model_hash, task, lang, key)
    if cached is None:
        score = evaluate_task(spec, data.docs, lang, scorer)
        metrics, n = score.metrics, score.n
        _store(store, model_hash, task, lang, key, {"metrics": metrics, "n": n})
    else:
        metrics, n = cached["metrics"], cached["n"]
    return TaskLanguageResult(task, lang, metrics, n, data.split, data.source, data.sha256, cached=cached is not None)


def _cached(store: ResultCache | None, model_hash: str, task: str, lang: str, key: dict[str, Any]) -> Any:
    """The cached result, as rank 0 finds it (ranks on other machines may have other caches; all must agree)."""
    if not store:
        return None
    return distributed.current().agree(lambda: store.get(model_hash, task, lang, key), "reading the result cache")


def _store(store: ResultCache | None, model_hash: str, task: str, lang: str, key: dict[str, Any], value: Any) -> None:
    if store and distributed.current().is_main:
        store.put(model_hash, task, lang, key, value)


def _parse_langs(langs: Iterable[str] | str) -> list[str]:
    names = [n.strip() for n in (langs.split(",") if isinstance(langs, str) else langs) if n.strip()]
    if not names:
        raise LanguageNotAvailableError("no language given; pass --langs, e.g. --langs en,de,sw")
    return list(dict.fromkeys(names))


def check_evaluation_data(
    langs: Iterable[str] | str,
    tasks: Iterable[str] | str = (PPL,),
    *,
    data_dir: Any = None,
    ppl_source: str = "flores",
    hub_data: bool | None = None,
) -> None:
    """Raise, before any work, for a task no source holds or a language no requested task has in any source;
    the message names the sources tried (``hfprune run`` calls it before pruning).

    Raises:
        UnknownTaskError, LanguageNotAvailableError, DataFileMissingError, DataFolderError.
    """
    task_names = parse_tasks(tasks if isinstance(tasks, str) else list(tasks))
    languages = _parse_langs(langs)
    roots = resolve_roots(data_dir)
    source = PerplexitySource(ppl_source)
    known: set[str] = set()
    use_hub = hub_allowed(hub_data)
    for task in task_names:
        if task == PPL:
            known.update(source.languages(roots, hub=hub_data))
            if source.kind == "hub":
                return  # a Hub text source cannot be listed offline; trust the user
        else:
            check_task_source(TASKS[task], roots, hub_data)
            known.update(local_languages(TASKS[task], roots), listed_languages(TASKS[task], roots))
            if use_hub:
                known.update(TASKS[task].languages)
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        hub = "the Hub" + (
            "" if use_hub else f" ({offline_reason() if hub_data is None else 'not asked: --no-hub-data'})"
        )
        raise LanguageNotAvailableError(
            f"no data for language(s) {', '.join(unknown)} in any requested task ({', '.join(task_names)}); "
            f"tried {tried(roots, hub)}; languages that exist: {', '.join(sorted(known)) or 'none'}. Pass --eval-source "
            "DIR with text of those languages (flores/{lang}.devtest.txt, {task}/{lang}.{split}.jsonl)"
        )


def _log_skip(skipped: Skipped) -> None:
    logger.warning("skipping %s/%s: %s", skipped.task, skipped.lang, skipped.reason)


def _summaries(rows: list[ChangeRow]) -> list[MetricSummary]:
    """Mean and worst language of every metric whose two values compare (per-token metrics under two tokenizers
    have none)."""
    rows = [r for r in rows if r.not_comparable is None]
    summaries = []
    for task, metric in dict.fromkeys((r.task, r.metric) for r in rows):
        group = [r for r in rows if r.task == task and r.metric == metric]
        worst = max(group, key=lambda r: r.degradation)
        mean = lambda values: sum(values) / len(values)  # noqa: E731
        summaries.append(
            MetricSummary(
                task=task,
                metric=metric,
                dense_mean=mean([r.dense for r in group]),
                pruned_mean=mean([r.pruned for r in group]),
                absolute_mean=mean([r.absolute for r in group]),
                relative_mean=mean([r.relative for r in group]),
                worst_lang=worst.lang,
                worst_relative=worst.relative,
            )
        )
    return summaries


__all__ = ["check_evaluation_data", "compare", "evaluate_model"]
