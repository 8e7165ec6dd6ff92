"""``hfprune methods``: the registered pruning methods, what each needs, and its options."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..pruning.methods import available


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("methods", help="list the pruning methods")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    rows = [
        {"name": name, "calibration": sorted(cls.needs), "summary": cls.summary} for name, cls in available().items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        data = "needs " + ", ".join(row["calibration"]) if row["calibration"] else "no calibration data"
        print(f"{row['name']:<12} {row['summary']} ({data})")
    return 0
