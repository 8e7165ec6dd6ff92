"""``hfprune export``: a model folder -> an OpenVINO IR (int8/int4/fp16/fp32) a CPU runs smaller and faster,
checked against the PyTorch model per language before it is kept."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..export import WEIGHT_FORMATS, ExportSettings, export_openvino
from ..export.settings import KNOWN_TARGETS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to OpenVINO (int8 keeps pruned zeros; sparse decompression on when sparse enough)",
        description="Export DIR (a model folder, e.g. one hfprune pruned) to --out through optimum-intel, verify "
        "it against the PyTorch model on held-out text of its languages, and time both.",
    )
    parser.add_argument("model", metavar="DIR", help="a model folder (safetensors) or Hub repo id")
    parser.add_argument("--to", required=True, choices=KNOWN_TARGETS, help="the runtime to export to")
    parser.add_argument("--out", required=True, help="output folder; DIR/openvino puts it beside the weights for push")
    add_export_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out that hfprune exported")
    parser.add_argument("--json", action="store_true", help="print the export record as JSON instead of a table")
    parser.set_defaults(handler=handle)


def add_export_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The export's own options; ``run`` takes them with the prefix ``export-`` (``--export-weights``)."""
    parser.add_argument(
        f"--{prefix}weights",
        default="int8",
        choices=WEIGHT_FORMATS,
        help="weight format (default int8: symmetric when the model is sparse, so its zeros stay exact)",
    )
    symmetry = parser.add_mutually_exclusive_group()
    symmetry.add_argument(
        f"--{prefix}sym",
        dest=f"{prefix.replace('-', '_')}sym",
        action="store_true",
        default=None,
        help="symmetric quantisation (default: when the model is sparse)",
    )
    symmetry.add_argument(
        f"--{prefix}asym",
        dest=f"{prefix.replace('-', '_')}sym",
        action="store_false",
        help="asymmetric quantisation (more precise, but turns pruned zeros into the zero point)",
    )
    parser.add_argument(f"--{prefix}group-size", type=int, default=128, help="int4 group size (-1: per channel)")
    parser.add_argument(
        f"--{prefix}sparse-rate",
        type=float,
        default=None,
        help="OpenVINO's CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE written to openvino_runtime.json (default: 0.5 when "
        "the int8 blocks are at least 30%% zeros, else off; 1 turns it off)",
    )
    parser.add_argument(
        f"--{prefix}calib",
        default=None,
        help="int4 only: text for data-aware int4 (AWQ + scale estimation), LANG:N documents, e.g. en:32,sw:32 "
        "(default: the languages the model was pruned on)",
    )
    parser.add_argument(
        f"--{prefix}verify-langs",
        default=None,
        help="languages to verify and measure in, e.g. en,sw (default: the pruning's calibration languages)",
    )
    parser.add_argument(f"--{prefix}verify-sentences", type=int, default=16, help="held-out sentences per language")
    parser.add_argument(f"--{prefix}greedy-tokens", type=int, default=16, help="greedy tokens compared per language")
    parser.add_argument(f"--{prefix}no-speed", action="store_true", help="skip timing PyTorch and the export")
    parser.add_argument(f"--{prefix}threads", type=int, default=None, help="threads for both (default: torch's)")


def export_defaults(prefix: str = "") -> dict[str, Any]:
    """Every export option's destination and default (``run`` refuses them without ``--export``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_export_options(parser, prefix)
    return vars(parser.parse_args([]))


def export_settings(args: argparse.Namespace, prefix: str = "") -> ExportSettings:
    def value(name: str) -> Any:
        return getattr(args, f"{prefix.replace('-', '_')}{name}")

    langs = value("verify_langs")
    return ExportSettings.build(
        to=getattr(args, "to", None) or getattr(args, "export", None) or "openvino",
        weights=value("weights"),
        sym=value("sym"),
        group_size=value("group_size"),
        sparse_rate=value("sparse_rate"),
        calib=value("calib"),
        verify_langs=tuple(lang.strip() for lang in langs.split(",") if lang.strip()) if langs else (),
        verify_sentences=value("verify_sentences"),
        greedy_tokens=value("greedy_tokens"),
        speed=not value("no_speed"),
        threads=value("threads"),
    )


def handle(args: argparse.Namespace) -> int:
    result = export_openvino(
        args.model, args.out, export_settings(args), overwrite=args.overwrite, command=args.invocation
    )
    if args.json:
        print(json.dumps({"out": str(result.out), **result.record}, indent=2, ensure_ascii=False, default=str))
    else:
        print_export_summary(result.record, result.out)
    return 0


def print_export_summary(record: dict[str, Any], out: Any, console: Console | None = None) -> None:
    """Size, zeros, per-language quality against PyTorch, greedy agreement and speed."""
    console = console or Console()
    sizes, weights = record["sizes"], record["ir"]
    zeros = weights["block_zero_share"]
    console.print(
        f"{record['weights']} OpenVINO IR: {sizes['ir_bytes'] / 1e6:,.1f} MB ({sizes['ratio']:.2f}x the "
        f"{sizes['safetensors_bytes'] / 1e6:,.1f} MB of safetensors); blocks' weights zero: "
        + ("not counted (int4 packing)" if zeros is None else f"{zeros:.1%}")
        + f"; runtime: {record['runtime']['why']}",
        soft_wrap=True,
    )
    verification = record["verification"]
    table = Table(title="exported vs PyTorch on held-out sentences (bits per byte; greedy tokens agreeing)")
    for column in (
        "language",
        "sentences",
        "PyTorch",
        "export",
        "change",
        "argmax agree",
        "max |logit diff|",
        "greedy",
    ):
        table.add_column(column, justify="left" if column == "language" else "right")
    for lang, row in verification["languages"].items():
        greedy = verification["greedy"][lang]
        table.add_row(
            lang,
            str(row["sentences"]),
            f"{row['bits_per_byte_pytorch']:.4f}",
            f"{row['bits_per_byte_export']:.4f}",
            f"{row['bits_per_byte_change']:+.2%}",
            f"{row['argmax_agreement']:.1%}",
            f"{row['max_abs_logit_difference']:.3g}",
            f"{greedy['agreeing_prefix']}/{greedy['new_tokens']}",
        )
    console.print(table)
    if not verification["passed"]:
        tolerance = verification["tolerance"]["bits_per_byte_change"]
        console.print(
            f"[yellow]warning:[/yellow] {', '.join(verification['over_tolerance'])} lose more than {tolerance:.0%} "
            f"bits per byte in {record['weights']}: measure the tasks you care about before publishing it",
            soft_wrap=True,
        )
    speed = record.get("speed")
    if speed:
        console.print(
            f"decode at batch 1 ({record['threads']} threads): PyTorch fp32 "
            f"{speed['pytorch_fp32']['decode_tokens_per_s']:.1f} -> export {speed['export']['decode_tokens_per_s']:.1f} "
            f"tokens/s ({speed['speedup']:.2f}x)",
            soft_wrap=True,
        )
    console.print(f"saved to {out}", soft_wrap=True)
