"""``hfprune heal``: distil the dense teacher into a pruned student on new text of the user's languages, zeros kept."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..calibration import Mix
from ..constants import DEFAULT_MAX_SHARD_SIZE
from ..healing import HealSettings, heal_pretrained
from ..models import ModelSource
from . import options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "heal",
        help="win back what pruning cost by distilling from the dense model (zeros stay zero)",
        description="Train the pruned PRUNED (a folder hfprune wrote) to match --teacher (the dense model) on new "
        "text of the --calib languages, keeping every pruned weight at zero, and write it to --out.",
    )
    parser.add_argument("model", metavar="PRUNED", help="a folder written by hfprune prune or trim-vocab")
    parser.add_argument("--teacher", required=True, help="the dense model: Hub repo id (owner/name) or a local folder")
    parser.add_argument("--teacher-revision", default=None, help="Hub branch, tag or commit of --teacher")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the teacher repo's own Python code (off by default)"
    )
    parser.add_argument(
        "--dtype", default="auto", choices=options.DTYPES, help="teacher weights dtype (default: its own)"
    )
    parser.add_argument(
        "--calib",
        required=True,
        help="languages of the healing text with relative weights, LANG:W,... e.g. en:1,sw:1 (--tokens sets the total)",
    )
    parser.add_argument(
        "--calib-source",
        default=None,
        help="folder of {lang}.txt/.jsonl files, or a datasets id (default: the text hfprune uses for calibration)",
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    options.add_heal_options(parser)
    parser.add_argument(
        "--max-shard-size",
        default=DEFAULT_MAX_SHARD_SIZE,
        help=f"safetensors shard size (default {DEFAULT_MAX_SHARD_SIZE})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out (and start over)")
    parser.add_argument("--json", action="store_true", help="print the healing record as JSON instead of a table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def heal_settings(args: argparse.Namespace) -> HealSettings:
    return HealSettings(
        calibration=Mix.parse(args.calib),
        tokens=args.tokens,
        epochs=args.epochs,
        calib_source=args.calib_source,
        mode=args.heal_mode,
        seqlen=args.seqlen,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        temperature=args.temperature,
        kd_weight=args.kd_weight,
        hidden_weight=args.hidden_weight,
        seed=args.seed,
        device=args.device,
        teacher_device=args.teacher_device,
        train_embeddings=args.train_embeddings,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every=args.checkpoint_every,
        quality_sentences=args.quality_sentences,
    )


def handle(args: argparse.Namespace) -> int:
    settings = heal_settings(args)
    teacher = ModelSource(
        args.teacher, revision=args.teacher_revision, trust_remote_code=args.trust_remote_code, dtype=args.dtype
    )
    result = heal_pretrained(
        args.model,
        teacher,
        args.out,
        settings,
        overwrite=args.overwrite,
        resume=args.resume,
        max_shard_size=args.max_shard_size,
        command=args.invocation,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        print(json.dumps({"out": args.out, "healing": result.record}, indent=2, ensure_ascii=False, default=str))
    else:
        print_heal_summary(result.record, args.out)
    return 0


def print_heal_summary(record: dict[str, Any], out: str | None, console: Console | None = None) -> None:
    """Loss before and after, what it trained on, and that the zeros stayed."""
    console = console or Console()
    table = Table(title=f"healing ({record['mode']}{', ' + record['lora'] if record.get('lora') else ''})")
    parts = ["loss", "kd", "ce"] + (["hidden"] if "hidden" in (record.get("loss_end") or {}) else [])
    for column in ("", "loss", "KD", "cross-entropy", "hidden states")[: len(parts) + 1]:
        table.add_column(column, justify="left" if not column else "right")
    for label, key in (("first step", "loss_start"), ("last step", "loss_end")):
        row = record.get(key) or {}
        table.add_row(label, *(f"{row[name]:.4f}" if name in row else "n/a" for name in parts))
    console.print(table)
    data = record["data"]
    console.print(
        f"text: {data['mix']} ({data['samples']} samples of {record['seqlen']} tokens"
        + (f", {record['epochs']} passes" if record.get("epochs", 1) > 1 else "")
        + f"; {sum(data['dropped_as_mask_samples'].values())} of the mask's own samples set aside), "
        f"{record['tokens_seen']:,} tokens in {record['steps']} steps, {record['tokens_per_s']:,.0f} tokens/s "
        f"on {record['device']}"
        + (
            f" (teacher on {record['teacher_device']})"
            if record.get("teacher_device", record["device"]) != record["device"]
            else ""
        )
        + ("; embeddings and output head frozen" if record.get("embeddings") == "frozen" else ""),
        soft_wrap=True,
    )
    console.print(
        f"zeros kept: {record['zeros_after']['zeros']:,} of {record['zeros_after']['weights']:,} prunable weights "
        f"(sparsity {record['achieved_sparsity']:.2%})",
        soft_wrap=True,
    )
    if out is not None:
        console.print(f"saved to {out}", soft_wrap=True)
