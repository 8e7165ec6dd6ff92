"""``hfprune analyze``: mask overlap between pruned models and the fate of language-specific neurons."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..analysis.analyze import NeuronSpec, analyze
from ..analysis.analyze_report import ANALYSIS_FILE, markdown, write_analysis
from ..io import check_not_over_model, check_output
from .options import comma_list, positive_int, whole_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="mask overlap between pruned models and the fate of language-specific neurons",
        description="Compare pruned FOLDERs (and their dense base): IoU per layer and module type; LAPE neurons.",
    )
    parser.add_argument(
        "folders", nargs="+", metavar="FOLDER", help="pruned folders (hfprune prune --out); one may be the dense base"
    )
    parser.add_argument("--base", default=None, help="the dense base model folder (enables the neuron analysis)")
    parser.add_argument("--out", help="also write analysis.json, analysis.md and PNGs into this folder")
    parser.add_argument(
        "--langs", default=None, help="languages for the neuron analysis (default: the models' calibration languages)"
    )
    parser.add_argument(
        "--samples", type=positive_int, default=8, help="calibration samples per language for firing rates (default 8)"
    )
    parser.add_argument("--seqlen", type=whole_number(2), default=256, help="tokens per sample (default 256)")
    parser.add_argument(
        "--calib-source",
        default=None,
        help="text folder for the neuron analysis (default: hfprune's default calibration text)",
    )
    parser.add_argument(
        "--top-rate",
        type=float,
        default=0.01,
        help="LAPE: share of neurons (lowest entropy) called language-specific (default 0.01)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--json", action="store_true", help="print analysis.json instead of the Markdown")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    for folder in [*args.folders, *([args.base] if args.base else [])]:  # never written into what it reads
        if args.out:
            check_not_over_model(folder, args.out)
    out = check_output(args.out, args.overwrite, marker=ANALYSIS_FILE, whole=False) if args.out else None
    spec = NeuronSpec(
        langs=comma_list(args.langs) or None,
        samples=args.samples,
        seqlen=args.seqlen,
        top_rate=args.top_rate,
        calib_source=args.calib_source,
    )
    report = analyze(args.folders, base=args.base, neuron_spec=spec)
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    if out is not None:
        written = write_analysis(report, Path(out))
        if not args.json:
            print(f"written: {', '.join(str(path) for path in written)}")
    return 0
