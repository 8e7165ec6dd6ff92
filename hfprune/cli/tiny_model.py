"""``hfprune tiny-model``: the folder of the project's small trained multilingual model (trained once, cached)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..tiny_model import TRAINING_RECORD, tiny_model_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tiny-model",
        help="print the folder of the project's small trained multilingual model (trains it once, ~minutes)",
    )
    parser.add_argument("--json", action="store_true", help="print the path and its training record as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    folder = tiny_model_path(progress=not args.json)
    if args.json:
        record = folder / TRAINING_RECORD
        info = json.loads(record.read_text()) if record.is_file() else {}
        print(json.dumps({"path": str(folder), "training": info}, indent=2))
    else:
        print(folder)
    return 0
