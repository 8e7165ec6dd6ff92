"""``hfprune pull | card | push | run | demo``: parse, call the library, print. The main CLI registers these.

Every ``add_*_parser`` returns its parser after ``set_defaults(handler=...)``; handlers return an exit code and
raise :class:`~hfprune.errors.HfpruneError` subclasses for user errors. No command takes a token argument:
tokens come from ``HF_TOKEN`` or ``hf auth login``, so they never land in shell history or ``hfprune.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hfprune.errors import HfpruneError


# --- pull -------------------------------------------------------------------------------------------------
def add_pull_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pull",
        help="download a model's safetensors, config and tokenizer into the Hugging Face cache",
        description="Download MODEL into the normal Hub cache (HF_HOME) and print its local folder. Uses HF_TOKEN "
        "or `hf auth login` for gated and private repos; HF_HUB_OFFLINE=1 uses only the cache.",
    )
    parser.add_argument("model", metavar="MODEL", help="Hub repo id, owner/name")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    parser.add_argument("--json", action="store_true", help="print {path, commit} as JSON")
    parser.set_defaults(handler=run_pull)
    return parser


def run_pull(args: argparse.Namespace) -> int:
    from hfprune.hub import pull

    folder = pull(args.model, revision=args.revision)
    print(json.dumps({"path": str(folder), "commit": folder.name}) if args.json else folder)
    return 0


# --- card -------------------------------------------------------------------------------------------------
def add_card_parser(subparsers: Any) -> argparse.ArgumentParser:
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
    parser.set_defaults(handler=run_card)
    return parser


def run_card(args: argparse.Namespace) -> int:
    from hfprune.card import write_card

    card = write_card(
        args.folder, results=args.results, plot=args.plot, repo_id=args.repo_id, license=args.license,
        template=args.template,
    )  # fmt: skip
    print(card)
    return 0


# --- push -------------------------------------------------------------------------------------------------
def add_push_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "push",
        help="publish a pruned folder to the Hub in one commit and verify it",
        description="Create REPO_ID if needed, upload every file of FOLDER in one commit, then compare the remote "
        "files' sizes and hashes with the local ones. Logs in with HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="a folder written by `hfprune prune` with its card")
    parser.add_argument("repo_id", metavar="REPO_ID", help="owner/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--revision", help="branch to commit to (created from main if missing)")
    parser.add_argument("--commit-message", help="commit title (default: method, sparsity, hfprune version)")
    parser.add_argument("--force", action="store_true", help="publish even without hfprune.json or README.md")
    parser.add_argument("--local-hub", type=Path, help="publish into this folder (Hub mirror layout) instead of the Hub")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_push)
    return parser


def run_push(args: argparse.Namespace) -> int:
    if args.create_pr and args.revision:
        raise HfpruneError("--create-pr opens a pull request against main; drop --revision, or drop --create-pr")
    if args.local_hub:
        from hfprune.publish.local_push import push_to_local_hub

        result = push_to_local_hub(
            args.folder, args.local_hub, args.repo_id, revision=args.revision, commit_message=args.commit_message,
            force=args.force,
        )  # fmt: skip
    else:
        from hfprune.publish.push import push_folder

        result = push_folder(
            args.folder, args.repo_id, private=args.private, create_pr=args.create_pr, revision=args.revision,
            commit_message=args.commit_message, force=args.force,
        )  # fmt: skip
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for warning in getattr(result, "warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"published {result.files} files ({result.bytes / 1e6:.1f} MB) in one commit {result.commit[:12]}")
    print("verified: every file is on the remote with the same size and hash")
    print(result.url)
    return 0


# --- run --------------------------------------------------------------------------------------------------
def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    from hfprune.calibration import DEFAULT_SEQLEN
    from hfprune.pruning.registry import available, cli_options

    parser = subparsers.add_parser(
        "run",
        help="pull -> prune -> eval -> card -> push, resumable",
        description="The whole job in one folder. A re-run skips the steps whose inputs did not change.",
    )
    parser.add_argument("model", metavar="MODEL", help="Hub repo id or a local model folder")
    parser.add_argument("--out", type=Path, help="the model folder to write (default: ./NAME-METHOD-SPARSITY)")
    parser.add_argument("--revision", help="Hub branch, tag or commit of MODEL")
    parser.add_argument("--method", default="wanda", choices=list(available()))
    parser.add_argument("--sparsity", type=float, default=None, help="share of weights to zero (default 0.5)")
    parser.add_argument("--structure", default="unstructured", help="'unstructured' or N:M, e.g. 2:4")
    parser.add_argument("--calib", help="calibration mix LANG:N,... e.g. en:64,sw:64")
    parser.add_argument("--calib-source", help="folder of {lang}.txt files or a datasets id (default: shared data)")
    parser.add_argument("--seqlen", type=int, default=DEFAULT_SEQLEN, help=f"tokens per sample (default {DEFAULT_SEQLEN})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-langs", help="evaluate these languages, e.g. en,sw,zh (default: no evaluation)")
    parser.add_argument("--eval-tasks", default="ppl", help="evaluation tasks (default ppl)")
    parser.add_argument("--eval-limit", type=int, help="at most N items per language and task")
    parser.add_argument("--context-length", type=int, default=512, help="perplexity window (default 512)")
    parser.add_argument("--push-to", metavar="REPO_ID", help="publish to this Hub repo at the end")
    parser.add_argument("--local-hub", type=Path, help="publish into this folder (Hub mirror layout) instead of the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--create-pr", action="store_true")
    parser.add_argument("--push-revision", help="branch to publish to")
    parser.add_argument("--license", help="licence id overriding the base model's")
    parser.add_argument("--device", help="cpu, cuda, ... (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    group = parser.add_argument_group("method options")
    for method_name, option in cli_options():
        group.add_argument(
            option.metadata["flag"], dest=f"m_{option.name}", type=type(option.default), default=None,
            help=f"[{method_name}] {option.metadata.get('help', '')} (default {option.default})",
        )  # fmt: skip
    parser.set_defaults(handler=run_run)
    return parser


def run_run(args: argparse.Namespace) -> int:
    from hfprune.pipeline import RunOptions, run_pipeline

    if args.local_hub and not args.push_to:
        raise HfpruneError("--local-hub says where to publish; also pass --push-to OWNER/NAME")
    if args.push_to:
        from hfprune.publish.push import check_repo_id

        check_repo_id(args.push_to)  # before minutes of pruning
    sparsity = args.sparsity if args.sparsity is not None or ":" in args.structure else 0.5
    out = args.out or Path(f"{Path(args.model).name}-{args.method}-{round((sparsity or 0) * 100)}")
    options = RunOptions(
        model=args.model, out=out, method=args.method, sparsity=sparsity, structure=args.structure,
        calib=args.calib, calib_source=args.calib_source, seqlen=args.seqlen, seed=args.seed,
        method_params={k[2:]: v for k, v in vars(args).items() if k.startswith("m_") and v is not None},
        revision=args.revision, eval_langs=[x for x in (args.eval_langs or "").split(",") if x],
        eval_tasks=args.eval_tasks, eval_limit=args.eval_limit, context_length=args.context_length,
        push_to=args.push_to, local_hub=args.local_hub, private=args.private, create_pr=args.create_pr,
        push_revision=args.push_revision, license=args.license, command=["hfprune", *sys.argv[1:]],
        device=args.device,
    )  # fmt: skip
    outcome = run_pipeline(options)
    if args.json:
        print(json.dumps({"folder": str(outcome.folder), "card": str(outcome.card), "ran": outcome.ran,
                          "skipped": outcome.skipped, "push": outcome.push}, indent=2))  # fmt: skip
        return 0
    print(f"model: {outcome.folder}\ncard: {outcome.card}")
    if outcome.push:
        print(f"published: {outcome.push['url']}")
    else:
        print(f"publish it with: hfprune push {outcome.folder} YOUR_USER/{outcome.folder.name}")
    return 0


# --- demo -------------------------------------------------------------------------------------------------
def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="the whole pipeline offline: tiny multilingual model, two methods, eval, cards, local publication",
        description="Prune the project's tiny trained multilingual model with two methods, evaluate each per "
        "language against the dense model, write the cards and publish them into OUT/hub (Hub repo layout).",
    )
    parser.add_argument("--out", type=Path, default=Path("hfprune-demo"), help="output folder (default ./hfprune-demo)")
    parser.add_argument("--methods", help="comma-separated methods (default: wanda and the best multilingual one)")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.set_defaults(handler=run_demo_command)
    return parser


def run_demo_command(args: argparse.Namespace) -> int:
    from hfprune.demo import DemoOptions, run_demo, side_by_side

    methods = tuple(m for m in (args.methods or "").split(",") if m)
    outcomes = run_demo(DemoOptions(out=args.out, methods=methods, sparsity=args.sparsity))
    print("\n".join(side_by_side(outcomes)))
    for outcome in outcomes:
        print(f"\ncard: {outcome.card}\nplot: {outcome.folder / 'eval_results.png'}")
        print(f"published locally: {outcome.push['url']} (commit {outcome.push['commit'][:12]}, verified)")
        name = outcome.push["repo_id"].split("/", 1)[1]
        print(
            "publish the same to huggingface.co (after `hf auth login`): "
            f"hfprune card {outcome.folder} --repo-id YOUR_USER/{name} && hfprune push {outcome.folder} YOUR_USER/{name}"
        )
    return 0


def add_publish_commands(subparsers: Any) -> None:
    """Register pull, card, push, run and demo on the main CLI's subparsers."""
    for add in (add_pull_parser, add_card_parser, add_push_parser, add_run_parser, add_demo_parser):
        add(subparsers)
