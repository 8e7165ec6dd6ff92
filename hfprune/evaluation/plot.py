"""A PNG of per-language change, dense vs pruned, for the model card to embed."""

from __future__ import annotations

from pathlib import Path

from ..io import PLOT_METADATA, atomic_path
from .results import LOWER_IS_BETTER, Comparison, EvalResult
from .tasks import HEADLINE_METRICS


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """One panel per (task, metric): bars of dense and pruned per language, relative change on top."""
    panels = [(s.task, s.metric) for s in comparison.summaries]
    return _plot(
        panels,
        lambda task, metric: [
            (r.lang, r.dense, r.pruned) for r in comparison.rows if r.task == task and r.metric == metric
        ],
        path,
    )


def plot_result(result: EvalResult, path: str | Path) -> Path:
    """Without a baseline: one panel per (task, metric) with the model's per-language values."""

    panels = list(dict.fromkeys((r.task, m) for r in result.results for m in HEADLINE_METRICS.get(r.task, ())[:1]))
    return _plot(
        panels,
        lambda task, metric: [
            (r.lang, None, r.metrics[metric]) for r in result.results if r.task == task and metric in r.metrics
        ],
        path,
    )


def _plot(panels, values_of, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n = max(len(panels), 1)
    columns = min(n, 3)
    rows = (n + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat[n:]:
        axis.set_visible(False)
    for axis, (task, metric) in zip(axes.flat, panels):
        values = values_of(task, metric)
        langs = [v[0] for v in values]
        positions = range(len(langs))
        has_dense = any(v[1] is not None for v in values)
        width = 0.4 if has_dense else 0.8
        if has_dense:
            axis.bar([p - width / 2 for p in positions], [v[1] for v in values], width, label="dense", color="#4c72b0")
        bars = axis.bar(
            [p + (width / 2 if has_dense else 0) for p in positions],
            [v[2] for v in values],
            width,
            label="pruned" if has_dense else None,
            color="#dd8452",
        )
        if has_dense:
            for bar, (_, dense, pruned) in zip(bars, values):
                change = (pruned - dense) / dense if dense else float("nan")
                axis.annotate(
                    f"{change:+.0%}",
                    (bar.get_x() + bar.get_width() / 2, max(dense, pruned)),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
            axis.legend(fontsize=7)
        direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        axis.set_title(f"{task}: {metric} ({direction})", fontsize=9)
        axis.set_xticks(list(positions), langs, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, metadata=PLOT_METADATA)
    plt.close(figure)
    return path
