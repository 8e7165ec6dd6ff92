"""PNG plots for sweeps and analyses (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io import PLOT_METADATA, atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display here or in CI
    import matplotlib.pyplot as plt

    return plt


def heatmaps(
    panels: Sequence[tuple[str, list[list[float]]]],
    rows: list[str],
    columns: list[str],
    path: Path,
    *,
    colorbar: str,
    fmt: str = "{:.2f}",
) -> Path:
    """One heatmap per panel (same rows and columns), values written in the cells."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(1.2 + 0.9 * len(columns) * len(panels), 1.2 + 0.5 * len(rows)), squeeze=False
    )
    for ax, (title, values) in zip(axes[0], panels):
        image = ax.imshow(values, cmap="YlOrRd", aspect="auto")
        low, high = image.get_clim()
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(title, fontsize=10)
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                dark = high > low and (value - low) / (high - low) > 0.6
                ax.text(
                    j, i, fmt.format(value), ha="center", va="center", fontsize=8, color="white" if dark else "black"
                )
        fig.colorbar(image, ax=ax, label=colorbar, shrink=0.8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, metadata=PLOT_METADATA)
    plt.close(fig)
    return path


def lines(series: dict[str, list[float]], x_labels: list[str], path: Path, *, ylabel: str, title: str) -> Path:
    """One line per series over the same x positions (e.g. IoU per layer for each model pair)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(x_labels)), 3.5))
    for label, values in series.items():
        ax.plot(range(len(values)), values, marker="o", markersize=3, label=label)
    ax.set_xticks(range(len(x_labels)), x_labels, rotation=90, fontsize=6)
    return _save(plt, fig, ax, path, ylabel=ylabel, title=title)


def _save(plt, fig, ax, path: Path, *, ylabel: str, title: str) -> Path:
    """Label the axes, put the legend under them, write the PNG and free the figure."""
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    # Model labels are long (method + calibration mix): the legend goes under the axes, one entry a line.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, frameon=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", metadata=PLOT_METADATA)
    plt.close(fig)
    return path


def grouped_bars(groups: list[str], series: dict[str, list[float]], path: Path, *, ylabel: str, title: str) -> Path:
    """Bars per group, one colour per series (e.g. language-specific neurons per layer, per language)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(groups) * max(1, len(series))), 3.5))
    width = 0.8 / max(1, len(series))
    for k, (label, values) in enumerate(series.items()):
        ax.bar([i + k * width for i in range(len(groups))], values, width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], groups, rotation=45, ha="right", fontsize=7)
    return _save(plt, fig, ax, path, ylabel=ylabel, title=title)
