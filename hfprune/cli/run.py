"""``hfprune run``: pull -> prune -> eval -> card -> push in one folder, resumable; every ``prune`` option applies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionError
from ..export.settings import KNOWN_TARGETS
from ..repo_id import check_repo_id
from ..workflow.run import RunOptions, run_job
from . import options
from .export import add_export_options, export_defaults, export_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="pull -> prune -> eval -> card -> push, resumable",
        description="The whole job in one folder. A re-run skips the steps whose inputs did not change.",
    )
    options.add_model_options(parser)
    parser.add_argument("--out", type=Path, help="the model folder to write (default: ./NAME-METHOD-SPARSITY)")
    options.add_pruning_options(parser)
    options.add_placement_options(parser)
    options.add_output_options(parser)
    group = parser.add_argument_group("evaluation")
    group.add_argument("--eval-langs", help="evaluate these languages, e.g. en,sw,zh (default: no evaluation)")
    group.add_argument("--eval-tasks", default="ppl", help="evaluation tasks (default ppl)")
    group.add_argument("--eval-limit", type=options.positive_int, help="at most N items per language and task")
    group.add_argument(
        "--eval-source",
        type=Path,
        help="evaluation data folder (flores/, xcopa/ ...) read instead of the defaults "
        "($HFPRUNE_DATA_DIR, the data shipped with hfprune, the Hub when online)",
    )
    options.add_eval_options(group)
    group = parser.add_argument_group("export (after evaluation, into OUT/openvino: a push publishes it too)")
    group.add_argument("--export", choices=KNOWN_TARGETS, help="also export the pruned model to this runtime")
    add_export_options(group, prefix="export-")
    group = parser.add_argument_group("publishing")
    group.add_argument("--push-to", metavar="REPO_ID", help="publish to this Hub repo at the end")
    group.add_argument("--local-hub", type=Path, help="publish into this folder (Hub mirror layout) instead of the Hub")
    group.add_argument("--private", action="store_true")
    group.add_argument("--create-pr", action="store_true")
    group.add_argument("--push-revision", help="branch to publish to")
    group.add_argument("--license", help="licence id overriding the base model's")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.local_hub and not args.push_to:
        raise InvalidOptionError("--local-hub says where to publish; also pass --push-to OWNER/NAME")
    if args.push_to:
        check_repo_id(args.push_to)  # before minutes of pruning
    if not args.export:
        options.refuse_stray_options(args, export_defaults("export-"), "--export openvino")
    settings = options.prune_settings(args)
    out = args.out or Path(options.run_folder_name(args))
    run = RunOptions(
        source=options.model_source(args),
        out=out,
        prune=settings,
        max_shard_size=args.max_shard_size,
        stream=args.stream,
        eval_langs=options.comma_list(args.eval_langs),
        eval_tasks=args.eval_tasks,
        eval_limit=args.eval_limit,
        eval_source=args.eval_source,
        context_length=args.context_length,
        eval_batch_size=args.eval_batch_size,
        push_to=args.push_to,
        local_hub=args.local_hub,
        private=args.private,
        create_pr=args.create_pr,
        push_revision=args.push_revision,
        license=args.license,
        export=export_settings(args, prefix="export-") if args.export else None,
        command=args.invocation,
        overwrite=args.overwrite,
    )
    outcome = run_job(run)
    if args.json:
        summary = {
            "folder": str(outcome.folder),
            "card": str(outcome.card),
            "ran": outcome.ran,
            "skipped": outcome.skipped,
            "push": outcome.push,
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(f"model: {outcome.folder}\ncard: {outcome.card}")
    if outcome.push:
        print(f"published: {outcome.push['url']}")
    else:
        print(f"publish it with: hfprune push {outcome.folder} YOUR_USER/{outcome.folder.name}")
    return 0
