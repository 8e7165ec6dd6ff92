"""``hfprune pull``: download a model's safetensors, config and tokenizer into the Hugging Face cache."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models.pull import pull


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pull",
        help="download a model's safetensors, config and tokenizer into the Hugging Face cache",
        description="Download MODEL into the normal Hub cache (HF_HOME) and print its local folder. Uses HF_TOKEN "
        "or `hf auth login` for gated and private repos; HF_HUB_OFFLINE=1 uses only the cache.",
    )
    parser.add_argument("model", metavar="MODEL", help="Hub repo id, owner/name")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    parser.add_argument("--json", action="store_true", help="print {path, commit} as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    folder = pull(args.model, revision=args.revision)
    print(json.dumps({"path": str(folder), "commit": folder.name}) if args.json else folder)
    return 0
