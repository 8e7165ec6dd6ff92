"""``hfprune``: the parser of every command, and the one place that turns errors into ``error: ...`` lines.

Each command is a module of this package with ``register(subparsers)``; its handler returns an exit code and
raises :class:`~hfprune.errors.HfpruneError` subclasses for what a user can fix, which :func:`main` prints as
one line (exit 2). Usage mistakes argparse finds are said the same way. No command takes a token argument:
tokens come from ``HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from ..constants import VERSION
from ..errors import HfpruneError, HfpruneWarning
from ..system import return_large_buffers_promptly
from . import analyze, card, demo, eval, methods, prune, pull, push, run, space, sweep, tiny_model, trim_vocab

Handler = Callable[[argparse.Namespace], int]
#: In the order ``hfprune --help`` lists them.
COMMANDS = (prune, methods, tiny_model, eval, pull, card, push, run, demo, sweep, analyze, space, trim_vocab)


class Parser(argparse.ArgumentParser):
    """argparse, with its mistakes said like every other one: one ``error:`` line, exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hfprune", description="Prune multilingual LLMs with a calibration-language mix.")
    parser.add_argument("--version", action="version", version=f"hfprune {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to the process's arguments (and is what outputs record)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as done:  # --help, --version, or a usage mistake already said in one line
        return done.code if isinstance(done.code, int) else 0
    args.invocation = ["hfprune", *arguments]
    _quiet_libraries()
    return_large_buffers_promptly()
    handler: Handler = args.handler
    try:
        with _warnings_as_lines():
            return int(handler(args) or 0)
    except HfpruneError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """hfprune's own warnings print as one ``warning:`` line each (other libraries' keep Python's format)."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 - warnings' hook
        if issubclass(category, HfpruneWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _quiet_libraries() -> None:
    """transformers' own loading/saving bars would interleave with ours; keep its warnings only."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
