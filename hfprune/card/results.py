"""Evaluation results (``hfprune eval --out``) as the card needs them: tables per metric and model-index entries.

Reads both shapes ``hfprune eval`` writes: a comparison (``{pruned, dense, changes, summary}``, with
``--baseline``) and a single evaluation (``{model, settings, results}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from ..errors import ResultsFormatError, ResultsOfAnotherModelError
from ..evaluation.results import LOWER_IS_BETTER
from ..evaluation.tasks import FLORES_CODES, HEADLINE_METRICS, TASKS
from ..io import read_json_object
from ..models.loading import weights_sha256

#: What each metric is called in model-index (Hub metric ids where one exists).
METRIC_TYPES = {"ppl": "perplexity", "bits_per_byte": "bits_per_byte", "acc": "accuracy", "acc_norm": "accuracy"}


@dataclass
class MetricTable:
    """One metric of one task across languages: dense and pruned values, relative change."""

    task: str
    metric: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # {lang, dense, pruned, relative}

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER


@dataclass
class CardResults:
    """Everything the card shows about evaluation."""

    tables: list[MetricTable]
    eval_results: list[EvalResult]
    languages: list[str]
    settings: dict[str, Any]
    skipped: list[dict[str, Any]]
    has_baseline: bool
    #: why token perplexity has no change column (the two models tokenize differently), if so
    note: str | None = None
    #: sha256 of each weights file of the evaluated (pruned) model, when the results record them
    weights: dict[str, str] | None = None
    #: said in the card when the user accepted results of other weights (``--allow-other-model``)
    other_model: str | None = None


def load_results(path: str | Path, model_name: str) -> CardResults:
    """Parse a results JSON written by ``hfprune eval``.

    Raises:
        ResultsFormatError: the file is missing, not JSON, or not in either shape.
    """
    path = Path(path)
    try:
        data = read_json_object(path)
    except ValueError as err:
        raise ResultsFormatError(
            f"{err}, so it is not a results file of `hfprune eval`; write one with `hfprune eval ... --out {path}`"
        ) from err
    if isinstance(data, dict) and "changes" in data and "pruned" in data:
        pruned, tables = data["pruned"], _comparison_tables(data["changes"])
    elif isinstance(data, dict) and "results" in data and "model" in data:
        pruned, tables = data, _single_tables(data["results"])
    else:
        raise ResultsFormatError(
            f"{path} is not a results file of `hfprune eval` (expected keys 'pruned' and 'changes', or 'model' and "
            "'results'); write it with `hfprune eval ./pruned --baseline MODEL --langs ... --out results.json`"
        )
    results = pruned.get("results", [])
    return CardResults(
        tables=tables,
        eval_results=[
            entry for result in results for entry in _eval_results(result, pruned.get("settings", {}), model_name)
        ],
        languages=list(dict.fromkeys(r["lang"] for r in results)),
        settings=pruned.get("settings", {}),
        skipped=pruned.get("skipped", []),
        has_baseline="changes" in data,
        note=data.get("tokenizers_differ") if isinstance(data, dict) else None,
        weights=pruned.get("model", {}).get("weights_sha256") if isinstance(pruned.get("model"), dict) else None,
    )


def check_results_match(card_results: CardResults, folder: Path, results: Path, allow_other: bool) -> None:
    """Refuse results measured on other weights than ``folder``'s (the card would state another model's
    numbers), unless ``allow_other``; then the card says so. Results that record no weights pass as they are.

    Raises:
        ResultsOfAnotherModelError: the recorded weights hashes differ from the folder's files.
    """
    if card_results.weights is None:
        return
    here = weights_sha256(folder)
    if here == card_results.weights:
        return
    differing = sorted(
        name for name in set(here) | set(card_results.weights) if here.get(name) != card_results.weights.get(name)
    )
    if not allow_other:
        raise ResultsOfAnotherModelError(
            f"{results} was measured on other weights than {folder}'s ({', '.join(differing[:3])} differ): "
            f"evaluate this folder (`hfprune eval {folder} ... --out results.json`), or pass --allow-other-model "
            "and the card will say the results are of another model"
        )
    card_results.other_model = (
        "These results were measured on other weights than the ones in this repository "
        f"({', '.join(differing[:3])} differ); they were kept on request (`--allow-other-model`)."
    )


def _comparison_tables(changes: list[dict[str, Any]]) -> list[MetricTable]:
    tables: dict[tuple[str, str], MetricTable] = {}
    for change in changes:
        table = tables.setdefault((change["task"], change["metric"]), MetricTable(change["task"], change["metric"]))
        table.rows.append({k: change.get(k) for k in ("lang", "dense", "pruned", "relative")})
    return list(tables.values())


def _single_tables(results: list[dict[str, Any]]) -> list[MetricTable]:
    tables: dict[tuple[str, str], MetricTable] = {}
    for result in results:
        for metric in _headline(result["task"]):
            if metric in result["metrics"]:
                table = tables.setdefault((result["task"], metric), MetricTable(result["task"], metric))
                table.rows.append(
                    {"lang": result["lang"], "dense": None, "pruned": result["metrics"][metric], "relative": None}
                )
    return list(tables.values())


def _eval_results(result: dict[str, Any], settings: dict[str, Any], model_name: str) -> list[EvalResult]:
    """One model-index entry per headline metric of one (task, language) result of the pruned model."""
    task, lang = result["task"], result["lang"]
    dataset_type, dataset_name, config = _dataset(task, lang, settings)
    entries = []
    for metric in _headline(task):
        value = result["metrics"].get(metric)
        if value is None:
            continue
        entries.append(
            EvalResult(
                task_type="text-generation" if task == "ppl" else "multiple-choice",
                task_name=task,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_config=config,
                dataset_split=result.get("split"),
                dataset_args={"language": lang},
                metric_type=METRIC_TYPES.get(metric, metric),
                metric_name=f"{metric} ({lang})",
                metric_value=round(float(value), 6),
            )
        )
    return entries


def _dataset(task: str, lang: str, settings: dict[str, Any]) -> tuple[str, str, str]:
    """(Hub dataset id, display name, config) of a task in a language."""
    if task == "ppl":
        source = settings.get("ppl_source", "flores")
        if source == "flores":
            return "facebook/flores", f"FLORES-200 devtest ({lang})", FLORES_CODES.get(lang, lang)
        return str(source), f"{source} ({lang})", lang
    spec = TASKS.get(task)
    if spec is None:
        return task, f"{task} ({lang})", lang
    return spec.hub_id or task, f"{task} ({lang})", spec.hub_config(lang)


def _headline(task: str) -> tuple[str, ...]:
    return HEADLINE_METRICS.get(task, ())
