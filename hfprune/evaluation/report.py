"""Per-language tables (rich) of one evaluation or of a dense-vs-pruned comparison."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from ..data_sources import SHIPPED
from .results import TOKENIZERS_DIFFER, Comparison, EvalResult
from .tasks import HEADLINE_METRICS


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def comparison_table(comparison: Comparison) -> Table:
    """Dense, pruned, absolute and relative change per task/metric/language, then mean and worst language."""
    table = Table(title="dense vs pruned, per language")
    for column in ("task", "metric", "lang", "dense", "pruned", "abs change", "rel change"):
        table.add_column(
            column, justify="right" if column in {"dense", "pruned", "abs change", "rel change"} else "left"
        )
    for summary in comparison.summaries:
        group = [r for r in comparison.rows if r.task == summary.task and r.metric == summary.metric]
        for row in group:
            table.add_row(
                row.task,
                row.metric,
                row.lang,
                _fmt(row.dense),
                _fmt(row.pruned),
                _fmt(row.absolute),
                f"{row.relative:+.1%}",
            )
        table.add_row(
            summary.task,
            summary.metric,
            "[bold]average[/bold]",
            _fmt(summary.dense_mean),
            _fmt(summary.pruned_mean),
            _fmt(summary.absolute_mean),
            f"{summary.relative_mean:+.1%}",
        )
        table.add_row(
            summary.task,
            summary.metric,
            f"[bold red]worst: {summary.worst_lang}[/bold red]",
            "",
            "",
            "",
            f"{summary.worst_relative:+.1%}",
            end_section=True,
        )
    for row in (r for r in comparison.rows if r.not_comparable is not None):
        table.add_row(row.task, row.metric, row.lang, _fmt(row.dense), _fmt(row.pruned), "n/a", "n/a")
    if comparison.tokenizers_differ:
        table.caption = f"token perplexity (ppl): {TOKENIZERS_DIFFER}"
    return table


def result_table(result: EvalResult) -> Table:
    """One model's headline metrics per task and language, with standard errors."""

    table = Table(title=f"{result.model.get('name')} per language")
    for column in ("task", "metric", "lang", "value", "stderr", "n", "split"):
        table.add_column(column)
    for item in result.results:
        for metric in HEADLINE_METRICS.get(item.task, ()):
            value = item.metrics.get(metric)
            stderr = item.metrics.get(f"{metric}_stderr")
            table.add_row(item.task, metric, item.lang, _fmt(value), _fmt(stderr), str(item.n), item.split or "-")
    return table


def print_report(result: EvalResult | Comparison, console: Console | None = None) -> None:
    """Print the table, then any skipped (task, language) pairs."""
    console = console or Console()
    if isinstance(result, Comparison):
        console.print(comparison_table(result))
        skipped = result.pruned.skipped
    else:
        console.print(result_table(result))
        skipped = result.skipped
    for item in skipped:
        console.print(f"[yellow]skipped[/yellow] {item.task}/{item.lang}: {item.reason}")


def source_lines(result: EvalResult) -> list[str]:
    """Where each task's data came from, one line per task: ``xcopa: shipped (et, sw), hf://datasets/... (qu)``."""
    lines = []
    for task in dict.fromkeys(r.task for r in result.results):
        by_source: dict[str, list[str]] = {}
        for row in result.results:
            if row.task == task:
                by_source.setdefault(_origin(row.source), []).append(row.lang)
        parts = [f"{origin} ({', '.join(langs)})" for origin, langs in by_source.items()]
        lines.append(f"data for {task}: {'; '.join(parts)}")
    return lines


def _origin(source: str | None) -> str:
    """A result's source without the language's file: ``shipped``, ``data``, ``hf://datasets/cambridgeltl/xcopa``."""
    if not source:
        return "unknown"
    if source.startswith("hf://datasets/"):
        return source.rsplit("/", 1)[0]
    if ":" in source:
        root = source.split(":", 1)[0]
        return "the data shipped with hfprune" if root == SHIPPED else f"the data folder '{root}'"
    return f"the folder '{source.rsplit('/', 1)[0]}'"
