"""``hfprune analyze`` outputs: ``analysis.json`` (for the model card), ``analysis.md`` and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_write_text, write_record
from . import plots

#: The analysis record; its presence marks a folder ``hfprune analyze`` wrote.
ANALYSIS_FILE = "analysis.json"


def write_analysis(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / ANALYSIS_FILE, out / "analysis.md"]
    write_record(written[0], report)
    atomic_write_text(written[1], markdown(report))
    if report["overlap"]:
        pairs = {f"{p['a']} vs {p['b']}": [v["iou"] for v in p["by_block"].values()] for p in report["overlap"]}
        blocks = list(report["overlap"][0]["by_block"])
        written.append(
            plots.lines(
                pairs, blocks, out / "iou_by_block.png", ylabel="IoU of pruned weights", title="Mask overlap per block"
            )
        )
    neurons = report.get("neurons")
    if neurons:
        per_block = neurons["specific_per_block"]
        series = {lang: [per_block[b][lang] for b in per_block] for lang in neurons["languages"]}
        written.append(
            plots.grouped_bars(
                list(per_block),
                series,
                out / "neurons_by_block.png",
                ylabel="language-specific neurons",
                title="Language-specific neurons (dense)",
            )
        )
        kept = neurons["kept_share"]
        groups = ["all_neurons", *neurons["languages"]]
        series = {model: [kept[model][g] if kept[model][g] is not None else 0.0 for g in groups] for model in kept}
        written.append(
            plots.grouped_bars(
                groups,
                series,
                out / "neurons_kept.png",
                ylabel="share of weights kept",
                title="Kept share of language-specific neurons",
            )
        )
    return written


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Pruning analysis", ""]
    if report["overlap"]:
        kinds = list(report["overlap"][0]["by_kind"])
        lines += [
            "## Mask overlap (IoU of pruned weights)",
            "",
            "| model A | model B | overall | random | " + " | ".join(kinds) + " |",
            "|" + "---|" * (4 + len(kinds)),
        ]
        for pair in report["overlap"]:
            lines.append(
                f"| {pair['a']} | {pair['b']} | {pair['iou']:.3f} | {pair['random_iou']:.3f} | "
                + " | ".join(f"{pair['by_kind'][k]['iou']:.3f}" for k in kinds)
                + " |"
            )
        lines.append("")
    neurons = report.get("neurons")
    if neurons:
        langs = neurons["languages"]
        lines += [
            "## Language-specific neurons (LAPE, dense base)",
            "",
            f"{neurons['neurons_total']} MLP neurons; specific per language: "
            + ", ".join(f"{l} {n}" for l, n in neurons["specific_per_language"].items()),
            "",
            "| block | " + " | ".join(langs) + " |",
            "|" + "---|" * (1 + len(langs)),
        ]
        for block, counts in neurons["specific_per_block"].items():
            lines.append(f"| {block} | " + " | ".join(str(counts[l]) for l in langs) + " |")
        lines += [
            "",
            "Share of each neuron's down-projection weights kept (mean over the neurons):",
            "",
            "| model | all neurons | " + " | ".join(langs) + " |",
            "|" + "---|" * (2 + len(langs)),
        ]
        for model, kept in neurons["kept_share"].items():
            cells = [f"{kept[l]:.3f}" if kept[l] is not None else "-" for l in langs]
            lines.append(f"| {model} | {kept['all_neurons']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
