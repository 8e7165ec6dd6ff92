"""``hfprune push``: publish a pruned folder to the Hub (or a local Hub-layout folder) in one commit, verified."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionError
from ..hub.local_push import push_to_local_hub
from ..hub.push import push_folder


def register(subparsers: Any) -> None:
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
    parser.add_argument(
        "--local-hub", type=Path, help="publish into this folder (Hub mirror layout) instead of the Hub"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.create_pr and args.revision:
        raise InvalidOptionError("--create-pr opens a pull request against main; drop --revision, or drop --create-pr")
    if args.local_hub:
        result = push_to_local_hub(
            args.folder,
            args.local_hub,
            args.repo_id,
            revision=args.revision,
            commit_message=args.commit_message,
            force=args.force,
        )
    else:
        result = push_folder(
            args.folder,
            args.repo_id,
            private=args.private,
            create_pr=args.create_pr,
            revision=args.revision,
            commit_message=args.commit_message,
            force=args.force,
        )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"published {result.files} files ({result.bytes / 1e6:.1f} MB) in one commit {result.commit[:12]}")
    if result.removed:
        print(f"removed from the repo (not in the folder): {', '.join(result.removed)}")
    print("verified: the remote holds exactly the folder's files, with the same sizes and hashes")
    print(result.url)
    return 0
