"""What a smaller or larger vocabulary would have covered: held-out coverage against size, from one trim.

The kept set at any smaller size is a prefix of the order the tokens joined in (:attr:`Selection.order`), and
the tokens left out by ``size`` continue that order, so one trim tells, for every size between the must-keep
tokens and the ranked tokens' end, the share of each language's held-out token occurrences kept whole: the
curve the card plots, with the chosen size marked. Bits per byte at several sizes need the model run at each;
``benchmarks/bench_vocab_curve.py`` measures those.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import PLOT_METADATA, atomic_path

#: Points of the curve (sizes spread evenly between the must-keep tokens and the end of the order).
POINTS = 24
#: The file beside the weights that shows the curve (the card embeds it).
CURVE_FILE = "vocab_curve.png"


def coverage_curve(
    order: Sequence[int],
    mandatory: int,
    chosen: int,
    held_out_ids: Mapping[str, list[list[int]]],
    parameters: tuple[int, int, int, int],
) -> dict[str, Any]:
    """Held-out coverage per language at ``POINTS`` sizes, the chosen one among them.

    ``parameters``: rows and parameters before and after trimming, to turn a size into a parameter count.
    """
    rows_before, rows_after, params_before, params_after = parameters
    per_row = (params_before - params_after) / (rows_before - rows_after) if rows_before > rows_after else 0.0
    position = {token: index for index, token in enumerate(order)}
    end = max(len(order), chosen)
    step = max((end - mandatory) // (POINTS - 1), 1)
    sizes = sorted({*range(mandatory, end + 1, step), end, chosen})
    coverage: dict[str, list[float]] = {}
    for lang, encoded in held_out_ids.items():
        places = sorted(position.get(token, len(order) + 1) for ids in encoded for token in ids)
        total = len(places) or 1
        coverage[lang] = [bisect.bisect_left(places, size) / total for size in sizes]
    return {
        "rows": sizes,
        "parameters": [round(params_after + (size - rows_after) * per_row) for size in sizes],
        "parameters_before": params_before,
        "coverage": coverage,
        "chosen_rows": chosen,
        "measured_on": "held-out sentences of the kept languages (the built-in check's), original tokenization",
    }


def plot_curve(curve: dict[str, Any], path: Path) -> Path:
    """The curve as a PNG (hfprune's mark in its metadata): parameters against held-out coverage per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    share = [p / curve["parameters_before"] for p in curve["parameters"]]
    chosen = curve["rows"].index(curve["chosen_rows"])
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    for lang, values in curve["coverage"].items():
        line = axis.plot(share, values, label=lang, linewidth=1.6)[0]
        axis.plot(share[chosen], values[chosen], "o", color=line.get_color())
    axis.axvline(share[chosen], color="grey", linestyle="--", linewidth=1)
    axis.annotate(
        f"this model: {curve['chosen_rows']:,} tokens",
        (share[chosen], axis.get_ylim()[0]),
        fontsize=8,
        xytext=(4, 6),
        textcoords="offset points",
    )
    axis.set_xlabel("parameters (share of the untrimmed model)")
    axis.set_ylabel("held-out token occurrences kept")
    axis.xaxis.set_major_formatter(PercentFormatter(1.0))
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.grid(alpha=0.3)
    axis.legend(title="language", fontsize=8)
    axis.set_title("Vocabulary size against coverage (kept languages)", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, metadata=PLOT_METADATA, format="png")
    plt.close(figure)
    return path
