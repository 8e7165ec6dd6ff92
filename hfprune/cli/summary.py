"""The summary table ``hfprune prune`` prints at the end (tables go to stdout, progress to stderr)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..api import PruneResult


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def print_prune_summary(result: PruneResult, out: str | Path, console: Console | None = None) -> None:
    """Per-module-type sparsity, then time and peak memory: what a user checks after ``hfprune prune``."""
    console = console or Console()
    table = Table(title=f"{result.method} · {result.structure} · target {result.target_sparsity:.1%}")
    table.add_column("module", style="bold")
    table.add_column("layers", justify="right")
    table.add_column("params", justify="right")
    table.add_column("sparsity", justify="right")
    table.add_column("min / max layer", justify="right")
    for kind, row in result.by_kind().items():
        achieved = [layer.achieved for layer in result.layers if layer.kind == kind]
        table.add_row(
            kind,
            str(int(row["layers"])),
            f"{int(row['params']):,}",
            f"{row['sparsity']:.2%}",
            f"{min(achieved):.2%} / {max(achieved):.2%}",
        )
    total = sum(layer.shape[0] * layer.shape[1] for layer in result.layers)
    table.add_section()
    table.add_row("all", str(len(result.layers)), f"{total:,}", f"{result.sparsity:.2%}", "")
    console.print(table)
    timings = result.timings
    parts = [f"prune {_fmt_s(timings.get('prune_s', 0.0))}"]
    for key, label in (("load_s", "load"), ("calibration_data_s", "calibration data"), ("save_s", "save")):
        if key in timings:
            parts.append(f"{label} {_fmt_s(timings[key])}")
    memory = ", ".join(f"{k.replace('_mb', '').replace('_', ' ')} {v:,.0f} MB" for k, v in result.peak_memory.items())
    calib = result.calibration
    if calib.get("mix"):
        console.print(f"calibration: {calib['mix']} x {calib['seqlen']} tokens (seed {calib['seed']})", soft_wrap=True)
    console.print(f"time: {', '.join(parts)} on {result.device}; peak memory: {memory}", soft_wrap=True)
    ranks = result.distributed.get("ranks") or []
    if ranks:
        peaks = ", ".join(f"{rank.get('cpu_peak_rss_mb', 0):,.0f}" for rank in ranks)
        console.print(
            f"processes: {result.distributed['world_size']} ({result.distributed['launcher']}); peak RSS per rank MB: "
            f"{peaks}", soft_wrap=True,
        )  # fmt: skip
    console.print(f"saved to {out}", soft_wrap=True)
