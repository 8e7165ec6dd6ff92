"""``hfprune demo``: the whole job offline on the project's tiny multilingual model, two methods side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..constants import PLOT_FILE
from ..workflow.demo import DemoOptions, run_demo, side_by_side, verdict
from .options import comma_list, open_fraction


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole pipeline offline: English-only vs mixed-language calibration on a tiny multilingual model",
        description="Prune the project's tiny trained multilingual model calibrated on English only and on an "
        "eight-language mix, evaluate each per language against the dense model, write the cards and publish them "
        "into OUT/hub (Hub repo layout); then say which calibration lost less in which languages.",
    )
    parser.add_argument("--out", type=Path, default=Path("hfprune-demo"), help="output folder (default ./hfprune-demo)")
    parser.add_argument(
        "--methods", default="wanda", help="comma-separated methods, each run with both calibrations (default wanda)"
    )
    parser.add_argument("--sparsity", type=open_fraction, default=0.5, help="share of weights to zero (default 0.5)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    runs = run_demo(DemoOptions(out=args.out, methods=tuple(comma_list(args.methods)), sparsity=args.sparsity))
    print("\n".join(side_by_side(runs)))
    print("\n" + "\n".join(verdict(runs)))
    for outcome in (run.outcome for run in runs):
        assert outcome.push is not None
        print(f"\ncard: {outcome.card}\nplot: {outcome.folder / PLOT_FILE}")
        print(f"published locally: {outcome.push['url']} (commit {outcome.push['commit'][:12]}, verified)")
        name = outcome.push["repo_id"].split("/", 1)[1]
        print(
            "publish the same to huggingface.co (after `hf auth login`): "
            f"hfprune card {outcome.folder} --repo-id YOUR_USER/{name} && hfprune push {outcome.folder} YOUR_USER/{name}"
        )
    return 0
