"""``hfprune card``: write FOLDER/README.md, the model card of a pruned folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..card import write_card


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "card",
        help="write FOLDER/README.md, the model card of a pruned folder",
        description="Render the model card (model_cards/ template) from FOLDER/hfprune.json, the evaluation "
        "results of `hfprune eval` and the base model's card (licence).",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="a folder written by `hfprune prune`")
    parser.add_argument("--results", type=Path, help="results JSON of `hfprune eval --out` (copied into FOLDER)")
    parser.add_argument("--plot", type=Path, help="its PNG (default: --results with .png)")
    parser.add_argument("--repo-id", help="the Hub id the model will have (used in the loading snippet)")
    parser.add_argument("--license", help="licence id, overriding the one inherited from the base model")
    parser.add_argument("--template", type=Path, help="a Jinja/Markdown card template (default: model_cards/)")
    parser.add_argument(
        "--allow-other-model",
        action="store_true",
        help="keep --results that record other weights than FOLDER's (the card then says so)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a README.md that hfprune did not write")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    card = write_card(
        args.folder,
        results=args.results,
        plot=args.plot,
        repo_id=args.repo_id,
        license=args.license,
        template=args.template,
        allow_other_model=args.allow_other_model,
        overwrite=args.overwrite,
    )
    print(card)
    return 0
