"""Run the publishing commands as the main CLI does (``error: <msg>`` and exit 2 on user errors).

hfprune/cli.py registers these commands; building the parser from them here keeps the tests independent of
which other commands the main CLI has.
"""

from __future__ import annotations

import argparse
import sys

from hfprune.errors import HfpruneError
from hfprune.publish.cli import add_publish_commands


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hfprune")
    add_publish_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    saved, sys.argv = sys.argv, ["hfprune", *argv]  # what a shell invocation would record
    try:
        return int(args.handler(args) or 0)
    except HfpruneError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        sys.argv = saved
