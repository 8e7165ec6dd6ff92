"""``hfprune``: the parser of every command, and the one place that turns errors into ``error: ...`` lines.

Each command is a module of this package with ``register(subparsers)``; its handler returns an exit code and
raises :class:`~hfprune.errors.HfpruneError` subclasses for what a user can fix, which :func:`main` prints as
one line (exit 2). Usage mistakes argparse finds are said the same way. No command takes a token argument:
tokens come from ``HF_TOKEN`` or ``hf auth login``.

Under ``torchrun`` / ``accelerate launch`` every rank runs the same command (:mod:`hfprune.distributed`): rank 0
prints the results, the other ranks print only their own errors, each line naming its rank.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from tqdm.auto import tqdm

from .. import distributed
from ..constants import VERSION
from ..errors import HfpruneError, HfpruneWarning, InvalidOptionError, LauncherEnvironmentError
from ..system import return_large_buffers_promptly
from . import (
    analyze,
    card,
    demo,
    eval,
    export,
    heal,
    methods,
    prune,
    pull,
    push,
    run,
    space,
    sweep,
    tiny_model,
    trim_vocab,
)

Handler = Callable[[argparse.Namespace], int]
#: In the order ``hfprune --help`` lists them.
COMMANDS = (
    prune,
    methods,
    tiny_model,
    eval,
    pull,
    card,
    push,
    run,
    demo,
    sweep,
    analyze,
    space,
    trim_vocab,
    heal,
    export,
)
#: The commands that share their work over the processes of a launch; the others refuse to run under one.
SHARED_COMMANDS = ("prune", "eval", "run", "sweep", "heal")


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
    rank = ""
    owns_group = not distributed.started()  # a caller that joined the group itself (tests, scripts) keeps it
    group = distributed.Group()
    try:
        group = distributed.world()  # joins the process group when a launcher started this process
        if group.size > 1:
            rank = f"rank {group.rank} of {group.size}: "
            if args.command not in SHARED_COMMANDS:
                refused = LauncherEnvironmentError(
                    f"hfprune {args.command} runs as one process; start it without torchrun or accelerate launch "
                    f"(the commands that share their work over processes: {', '.join(SHARED_COMMANDS)})"
                )
                refused.raised_on_every_rank = True  # type: ignore[attr-defined]
                raise refused
        with _warnings_as_lines(), contextlib.redirect_stdout(sys.stdout if group.is_main else io.StringIO()):
            return int(handler(args) or 0)
    except HfpruneError as err:
        # Rank 0's error raised on every rank alike, or an option error (the command line is every rank's): once.
        shared = getattr(err, "raised_on_every_rank", False) or isinstance(err, InvalidOptionError)
        if group.is_main or not shared:
            message = str(err) if str(err).startswith("rank ") else rank + str(err)
            tqdm.write(f"error: {message}", file=sys.stderr)  # on a line of its own, even under a progress bar
        if shared:
            _wait_for_rank0_to_print(group)
        return err.exit_code
    except KeyboardInterrupt:
        # True of every command: what was being written is discarded; what had finished (a run's earlier steps,
        # an LFS object already copied into a local Hub's store, which no commit names yet) stays.
        print(f"{rank}interrupted: what was being written was discarded, nothing half-written is left", file=sys.stderr)
        return 130
    finally:
        if owns_group:
            distributed.teardown()


def _wait_for_rank0_to_print(group: distributed.Group) -> None:
    """Ranks leave together: a launcher stops every rank once one exits, which could cut rank 0 short."""
    try:
        group.barrier("leaving together after an error")
    except HfpruneError:
        pass


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
