"""``hfprune prune``: prune MODEL one-shot with a calibration-language mix and write the sparse checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..api import prune_pretrained
from . import options
from .heal import print_heal_summary
from .summary import print_prune_summary
from .trim_vocab import print_vocab_summary


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune a model one-shot with a calibration-language mix",
        description="Prune MODEL (Hub id or local folder) and write the sparse checkpoint to --out.",
    )
    options.add_model_options(parser)
    parser.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    options.add_pruning_options(parser)
    options.add_placement_options(parser)
    options.add_output_options(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    result = prune_pretrained(
        options.model_source(args),
        args.out,
        options.prune_settings(args),
        overwrite=args.overwrite,
        max_shard_size=args.max_shard_size,
        stream=args.stream,
        command=args.invocation,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        print(json.dumps({"out": args.out, **result.to_dict()}, indent=2, default=str))
    else:
        print_prune_summary(result, args.out)
        if result.trimmed is not None:
            print_vocab_summary(result.trimmed.record, None)
        if result.healing is not None:
            print_heal_summary(result.healing, None)
    return 0
