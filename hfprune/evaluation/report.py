"""Per-language tables (rich) of one evaluation or of a dense-vs-pruned comparison."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from hfprune.evaluation.results import TOKENIZERS_DIFFER, Comparison, EvalResult
from hfprune.evaluation.tasks import HEADLINE_METRICS


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
            summary.task, summary.metric, "[bold]average[/bold]", _fmt(summary.dense_mean), _fmt(summary.pruned_mean),
            _fmt(summary.absolute_mean), f"{summary.relative_mean:+.1%}",
        )  # fmt: skip
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
