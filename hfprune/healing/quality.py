"""What healing won back, per language: bits per byte of the dense teacher, the pruned student before healing and
after, on held-out FLORES devtest sentences (never healing or calibration text), and the card's plot of the three.

A few sentences per language (``HealSettings.quality_sentences``) keep it cheap beside the training; each model
reads them in its own tokens, so a trimmed student compares with its untrimmed teacher. ``hfprune eval`` of the
healed folder is the full measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..io import PLOT_METADATA, atomic_path
from ..models.quality import held_out_bits_per_byte

#: Beside the healed weights: dense, pruned and healed bits per byte per language (hfprune-marked PNG).
QUALITY_PLOT = "healing_quality.png"


def measure(model: Any, tokenizer: Any, sentences: dict[str, list[str]]) -> dict[str, float]:
    with torch.no_grad():
        return {
            lang: held_out_bits_per_byte(model, tokenizer, lines)["bits_per_byte"] for lang, lines in sentences.items()
        }


def quality_record(
    dense: dict[str, float],
    pruned: dict[str, float],
    healed: dict[str, float],
    files: dict[str, str],
    missing: list[str],
    *,
    adapter_kept: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per language the three figures and the share of the pruning's loss healing won back; for LoRA on a sparse
    student also ``adapter_kept``: the model with its adapters unmerged (dense ``B @ A`` beside the zeros), so the
    record says what merging and re-masking cost against keeping them."""
    rows = {}
    for lang in dense:
        lost = pruned[lang] - dense[lang]
        rows[lang] = {
            "dense": dense[lang],
            "pruned": pruned[lang],
            "healed": healed[lang],
            "won_back": (pruned[lang] - healed[lang]) / lost if lost > 0 else None,
            **({"adapter_kept": adapter_kept[lang]} if adapter_kept else {}),
        }
    return {
        "metric": "bits_per_byte",
        "languages": rows,
        "files": files,
        "not_measured": missing,
    }


def plot_quality(record: dict[str, Any], path: Path) -> Path:
    """Grouped bars: per language, dense / pruned / healed bits per byte."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(record["languages"])
    figure, axis = plt.subplots(figsize=(max(4.0, 1.2 * len(langs) + 2), 3.6))
    width = 0.26
    for offset, (key, label) in enumerate((("dense", "dense"), ("pruned", "pruned"), ("healed", "healed"))):
        values = [record["languages"][lang][key] for lang in langs]
        axis.bar([i + (offset - 1) * width for i in range(len(langs))], values, width, label=label)
    axis.set_xticks(range(len(langs)), langs)
    axis.set_ylabel("bits per byte (lower is better)")
    axis.set_title("Held-out FLORES devtest: before pruning, after pruning, after healing", fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, metadata=PLOT_METADATA, format="png")
    plt.close(figure)
    return path
