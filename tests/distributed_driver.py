"""Run several ``hfprune`` command lines in one process per rank, under a real launcher (torchrun).

Starting Python, torch and transformers takes most of a small distributed test's time, so the tests launch
this script once (``torchrun --nproc-per-node 2 tests/distributed_driver.py COMMANDS.json``) and it runs each
command line through ``hfprune``'s own entry point, in one process group: the same code path as
``torchrun -m hfprune ...``, which one test also runs as it is.

Exit status: the largest of the commands' exit codes.
"""

from __future__ import annotations

import json
import sys

from hfprune import distributed
from hfprune.cli.main import main


def run(commands: list[list[str]]) -> int:
    distributed.world()  # join once; each command then runs in this group (main leaves it to us)
    try:
        return max((main(argv) for argv in commands), default=0)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.exit(run(json.load(f)))
