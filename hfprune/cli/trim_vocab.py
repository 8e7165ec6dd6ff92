"""``hfprune trim-vocab``: keep only the tokens the given languages use; a smaller model that loads with plain transformers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..constants import DEFAULT_MAX_SHARD_SIZE
from ..vocab import trim_vocab_pretrained
from ..vocab.verify import coverage_advice
from . import options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trim-vocab",
        help="drop the vocabulary the given languages never use (smaller embeddings and output layer)",
        description="Trim MODEL's vocabulary to the tokens of --langs (plus special, byte and, with --vocab-scripts, "
        "script tokens), check it on held-out text and write the smaller model to --out.",
    )
    options.add_model_options(parser)
    parser.add_argument(
        "--langs",
        required=True,
        help="languages whose tokens stay, e.g. en,de,sw; en:2,sw:1 gives en twice sw's share of the frequency budget",
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    options.add_vocab_options(parser, with_pruning=False)
    parser.add_argument(
        "--max-shard-size",
        default=DEFAULT_MAX_SHARD_SIZE,
        help=f"safetensors shard size (default {DEFAULT_MAX_SHARD_SIZE})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--json", action="store_true", help="print hfprune.json's vocabulary record as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = options.vocab_settings(args, langs=args.langs)
    result = trim_vocab_pretrained(
        options.model_source(args),
        args.out,
        settings,
        overwrite=args.overwrite,
        max_shard_size=args.max_shard_size,
        command=args.invocation,
    )
    if args.json:
        print(json.dumps({"out": args.out, **result.record}, indent=2, ensure_ascii=False, default=str))
    else:
        print_vocab_summary(result.record, args.out)
    return 0


def print_vocab_summary(record: dict[str, Any], out: str | Path | None, console: Console | None = None) -> None:
    """What was kept, what it saved, and how the held-out check went, per language."""
    console = console or Console()
    selection = record["selection"]
    reasons = ", ".join(f"{name} {count:,}" for name, count in selection["by_reason"].items() if count)
    console.print(
        f"vocabulary: {record['rows_before']:,} -> {record['rows_after']:,} tokens ({reasons}); "
        f"merges {selection['merges_before']:,} -> {selection['merges_kept']:,}",
        soft_wrap=True,
    )
    console.print(
        f"parameters: {record['parameters_before']:,} -> {record['parameters_after']:,} "
        f"({record['parameters_after'] / record['parameters_before']:.1%})",
        soft_wrap=True,
    )
    files = record.get("files") or {}
    if files.get("safetensors_bytes_before") and files.get("safetensors_bytes_after"):
        console.print(
            f"safetensors: {files['safetensors_bytes_before'] / 1e6:,.1f} MB -> "
            f"{files['safetensors_bytes_after'] / 1e6:,.1f} MB",
            soft_wrap=True,
        )
    per_language = record.get("per_language") or {}
    if per_language:
        weights = (record.get("settings") or {}).get("weights") or [1.0] * len(per_language)
        budget = Table(title="what each kept language kept (coverage: share of its token occurrences)")
        for column in ("language", "budget share", "tokens kept", "coverage (source)", "coverage (held-out)"):
            budget.add_column(column, justify="left" if column == "language" else "right")
        for (lang, row), weight in zip(per_language.items(), weights):
            held_out = row.get("coverage_held_out")
            budget.add_row(
                lang,
                f"{weight / sum(weights):.0%}",
                f"{row['tokens_kept']:,} of {row['tokens_used']:,}",
                f"{row['coverage_source']:.2%}",
                "n/a" if held_out is None else f"{held_out:.2%}",
            )
        console.print(budget)
    table = Table(title="held-out text (identical: sentences tokenized exactly as before)")
    for column in ("language", "kept", "sentences", "identical", "tokens/byte before", "after", "change"):
        table.add_column(column, justify="left" if column in ("language", "kept") else "right")
    verification = record["verification"]
    for kept, group in (("yes", verification["kept"]), ("no", verification["not_kept"])):
        for lang, row in group.items():
            table.add_row(
                lang,
                kept,
                str(row["sentences"]),
                f"{row['identical_share']:.1%}",
                f"{row['tokens_per_byte_before']:.4f}",
                f"{row['tokens_per_byte_after']:.4f}",
                f"{row['tokens_change']:+.1%}",
            )
    console.print(table)
    advice = coverage_advice(verification["kept"])
    if advice:
        console.print(f"[yellow]warning:[/yellow] {advice}", soft_wrap=True)
    logits = verification["logits"]
    console.print(
        f"logits on {logits['sentences']} identically tokenized sentences: max |difference| "
        f"{logits['max_abs_difference']:.2g} ({logits['dtype']}, tolerance {logits['tolerance']:.0e}): "
        + ("[green]same[/green]" if logits["passed"] else "[red]DIFFERENT[/red]"),
        soft_wrap=True,
    )
    speed = record.get("speed") or {}
    if "before" in speed and "after" in speed:
        before, after = speed["before"], speed["after"]
        console.print(
            f"generate on {before['device']} ({before['threads']} threads): prefill "
            f"{before['prefill_tokens_per_s']:.1f} -> {after['prefill_tokens_per_s']:.1f} tokens/s, decode "
            f"{before['decode_tokens_per_s']:.1f} -> {after['decode_tokens_per_s']:.1f} tokens/s",
            soft_wrap=True,
        )
    if out is not None:
        console.print(f"saved to {out}", soft_wrap=True)
