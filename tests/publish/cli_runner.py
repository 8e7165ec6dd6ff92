"""Run commands as a user's shell does: through ``hfprune.cli.main`` (``error: <msg>`` and exit 2 on user errors)."""

from __future__ import annotations

from hfprune.cli.main import main


def run_cli(argv: list[str]) -> int:
    return main(argv)
