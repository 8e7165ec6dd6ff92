"""A sweep's outputs: ``sweep.json`` (everything), ``sweep.md`` (the table), ``heatmap_s{S}.png``.

Heatmap rows are calibration mixes, columns evaluation languages, one panel per method; cells show the
perplexity *ratio to the dense model*, so languages with very different base perplexities share one scale.
"""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write_text, write_record
from . import plots
from .flores_eval import summarise
from .sweep import SweepResult

#: The sweep's record; its presence marks a folder ``hfprune sweep`` wrote (``--overwrite`` replaces only those).
SWEEP_FILE = "sweep.json"


def write_sweep(result: SweepResult, out: Path, *, plots_too: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / SWEEP_FILE, out / "sweep.md"]
    write_record(written[0], result.to_dict())
    atomic_write_text(written[1], markdown_table(result))
    if plots_too and result.cells:
        written += write_heatmaps(result, out)
    return written


def markdown_table(result: SweepResult) -> str:
    langs = result.spec.eval_langs
    head = ["method", "sparsity", "calibration", *langs, "mean", "worst (lang)", "mean x dense"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    dense = summarise(result.dense)
    lines.append(_row("dense", "0", "-", [result.dense[l]["ppl"] for l in langs], dense, 1.0))
    for cell in result.cells:
        summary = summarise(cell.eval, result.dense)
        lines.append(
            _row(
                cell.method,
                f"{cell.achieved_sparsity:.3f}",
                cell.calib,
                [cell.eval[l]["ppl"] for l in langs],
                summary,
                summary["mean_ratio"],
            )
        )
    bpb = [
        "",
        "Bits per byte (tokenizer-independent):",
        "",
        "| method | sparsity | calibration | " + " | ".join(langs) + " |",
        "|" + "---|" * (3 + len(langs)),
    ]
    bpb.append("| dense | 0 | - | " + " | ".join(f"{result.dense[l]['bits_per_byte']:.3f}" for l in langs) + " |")
    for cell in result.cells:
        bpb.append(
            f"| {cell.method} | {cell.sparsity:g} | {cell.calib} | "
            + " | ".join(f"{cell.eval[l]['bits_per_byte']:.3f}" for l in langs)
            + " |"
        )
    untrimmed = result.vocab.get("dense_untrimmed")
    if untrimmed:
        bpb.append(
            "| dense, vocabulary not trimmed | 0 | - | "
            + " | ".join(f"{untrimmed[l]['bits_per_byte']:.3f}" for l in langs)
            + " |"
        )
    intro = [
        "# Calibration-language sweep",
        "",
        "FLORES devtest perplexity per evaluation language "
        f"({result.spec.eval_sentences or 'all'} sentences, context {result.spec.context_length}).",
        "",
    ]
    if result.vocab:
        record = result.vocab["record"]
        intro += [
            f"Vocabulary trimmed first to the tokens of {', '.join(record['languages'])} ({record['rows_after']:,} of "
            f"{record['rows_before']:,} tokens); the dense row and every cell use the trimmed model and tokenizer, so "
            "their perplexities compare; the untrimmed dense model is in the bits-per-byte table.",
            "",
        ]
    return "\n".join(intro + lines + bpb) + "\n"


def _row(method: str, sparsity: str, calib: str, ppl: list[float], summary: dict, ratio: float) -> str:
    cells = [
        method,
        sparsity,
        calib,
        *(f"{p:.2f}" for p in ppl),
        f"{summary['mean_ppl']:.2f}",
        f"{summary['worst_ppl']:.2f} ({summary['worst_lang']})",
        f"{ratio:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def write_heatmaps(result: SweepResult, out: Path) -> list[Path]:
    langs, mixes = result.spec.eval_langs, result.spec.mixes
    paths = []
    for sparsity in sorted({c.sparsity for c in result.cells}):
        panels = []
        for method in dict.fromkeys(c.method for c in result.cells):
            by_mix = {c.calib: c for c in result.cells if c.method == method and c.sparsity == sparsity}
            values = [[by_mix[m].eval[l]["ppl"] / result.dense[l]["ppl"] for l in langs] for m in mixes if m in by_mix]
            panels.append((f"{method} @ {sparsity:g}", values))
        path = out / f"heatmap_s{sparsity:g}.png"
        paths.append(plots.heatmaps(panels, [m for m in mixes], langs, path, colorbar="perplexity / dense"))
    return paths
