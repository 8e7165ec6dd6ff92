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
    if result.structured is not None:
        print_structured_summary(result, console)
        _print_footer(result, out, console)
        return
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
    _print_footer(result, out, console)


def _print_footer(result: PruneResult, out: str | Path, console: Console) -> None:
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
            f"{peaks}",
            soft_wrap=True,
        )
    console.print(f"saved to {out}", soft_wrap=True)


def print_structured_summary(result: PruneResult, console: Console) -> None:
    """What structured pruning removed per block, the model's size before and after, and its speed."""
    record = result.structured or {}
    plan = record.get("plan", {})
    table = Table(title=f"{result.method} · {result.structure} · --lang-agg {result.params.get('lang_agg')}")
    for name, justify in (
        ("block", "right"),
        ("neurons removed", "right"),
        ("heads removed", "right"),
        ("refit error (dropped -> refit)", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    removed = set(record.get("blocks_removed", []))
    rows = {row["block"]: row for row in record.get("blocks", [])}
    for index in range(plan.get("blocks", 0)):
        if index in removed:
            table.add_row(str(index), "[bold]block removed[/bold]", "", "")
            continue
        row = rows.get(index, {})
        refit = ", ".join(
            f"{kind} {v['error_dropped']:.3f} -> {v['error_refit']:.3f}{'' if v['refit_used'] else ' (kept dropped)'}"
            for kind, v in row.get("refit", {}).items()
        )
        table.add_row(
            str(index),
            f"{len(row.get('neurons_removed', []))} / {plan.get('width')}",
            f"{len(row.get('query_heads_removed', []))} / {plan.get('heads')}",
            refit or "-",
        )
    console.print(table)
    before, after = record.get("params_before", {}), record.get("params_after", {})
    if before and after:
        console.print(
            f"parameters: {before['total']:,} -> {after['total']:,} ({after['total'] / before['total'] - 1:+.1%}); "
            f"blocks {before['blocks']:,} -> {after['blocks']:,} ({after['blocks'] / before['blocks'] - 1:+.1%}); "
            f"weights {before['total_bytes'] / 2**20:,.1f} -> {after['total_bytes'] / 2**20:,.1f} MiB",
            soft_wrap=True,
        )
    speed = record.get("speed")
    if speed:
        dense, pruned = speed["dense"], speed["pruned"]
        console.print(
            f"speed ({dense['setup']['device']}, {dense['setup']['threads']} threads, batch 1): prefill "
            f"{dense['prefill_tokens_per_s']:,.0f} -> {pruned['prefill_tokens_per_s']:,.0f} tokens/s, decode "
            f"{dense['decode_tokens_per_s']:,.1f} -> {pruned['decode_tokens_per_s']:,.1f} tokens/s, blocks per decoded "
            f"token {dense['blocks_decode_ms_per_token']:.2f} -> {pruned['blocks_decode_ms_per_token']:.2f} ms",
            soft_wrap=True,
        )
