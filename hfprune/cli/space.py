"""``hfprune space serve | deploy``: parse, call :mod:`hfprune.space.serve` / :mod:`hfprune.hub.space`, print.

No command takes a token argument: tokens come from ``HF_TOKEN`` or ``hf auth login``, so they never land in
shell history, and nothing here prints one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..hub.space import PRUNED_RUNTIMES, deploy_space
from ..space.serve import serve
from ..system import resolve_device
from . import options
from .options import whole_number


def register(subparsers: Any) -> None:
    """Register ``space`` with its ``serve`` and ``deploy`` sub-commands on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "space",
        help="compare dense and pruned generations in a browser: run the page locally or deploy it as a Space",
        description="The dense-vs-pruned page (spaces/compare/app.py): side-by-side streaming generations per "
        "language, and per-token scores that show where the pruned model first differs.",
    )
    commands = parser.add_subparsers(dest="space_command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_deploy(commands)


def _add_serve(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="serve the comparison page on this machine",
        description="Load both models once and serve the page until Ctrl+C. Models are folders or Hub ids "
        "(HF_TOKEN / `hf auth login` for private ones); only safetensors weights are loaded.",
    )
    p.add_argument("--pruned", required=True, metavar="PRUNED", help="the pruned model: folder or Hub id")
    p.add_argument(
        "--dense", metavar="MODEL", help="the dense model (default: the base model in PRUNED's hfprune.json)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a LAN)")
    p.add_argument("--port", type=whole_number(1, 65535), default=7860, help="port (default 7860)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: a GPU when there is one)")
    _add_runtime(p)
    options.add_placement_options(p)
    p.set_defaults(handler=run_serve)


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pruned-runtime",
        choices=PRUNED_RUNTIMES,
        default="pytorch",
        help="run the pruned side with PyTorch (default) or from its OpenVINO export in PRUNED/openvino "
        "(`hfprune export PRUNED --to openvino --out PRUNED/openvino`), on the CPU: what a user would run",
    )


def run_serve(args: argparse.Namespace) -> int:
    if args.device:
        resolve_device(args.device)
    serve(
        args.dense,
        args.pruned,
        host=args.host,
        port=args.port,
        device=args.device,
        block=True,
        placement=options.placement(args),
        pruned_runtime=args.pruned_runtime,
    )
    return 0


def _add_deploy(commands: Any) -> None:
    p = commands.add_parser(
        "deploy",
        help="create or update a Gradio Space comparing a pruned Hub model with its dense base",
        description="Create the Space (if needed), set DENSE_MODEL and PRUNED_MODEL as its variables and upload "
        "spaces/compare/ in one commit. Logs in with HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("--pruned", required=True, metavar="USER/NAME", help="the pruned model's Hub id")
    p.add_argument("--space-id", metavar="USER/NAME", help="the Space's id (default: PRUNED-demo)")
    p.add_argument("--dense", metavar="OWNER/NAME", help="the dense model (default: the base model PRUNED records)")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument(
        "--hardware",
        metavar="FLAVOR",
        help="Space hardware, e.g. cpu-basic, t4-small (default: leave as is; new Spaces get cpu-basic)",
    )
    _add_runtime(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    result = deploy_space(
        args.pruned,
        space_id=args.space_id,
        dense=args.dense,
        private=args.private,
        hardware=args.hardware,
        pruned_runtime=args.pruned_runtime,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"Space {result.space_id}: {result.dense} (dense) vs {result.pruned} (pruned), commit {result.commit[:12]}")
    if result.hardware:
        print(f"hardware requested: {result.hardware}")
    print(result.url)
    return 0
