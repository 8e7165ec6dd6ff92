"""The house rules hold: rooms import only rooms below them (import-linter), and the code is clean under ruff.

These run the same tools a developer runs (``lint-imports``, ``ruff check``, ``ruff format --check``) from the
test environment, so CI fails when a change breaks a layer or the style.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHECKED = ["hfprune", "tests", "benchmarks"]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_rooms_import_only_rooms_below_them():
    done = _run(str(BIN / "lint-imports"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command):
    done = _run(str(BIN / "ruff"), *command, *CHECKED)
    assert done.returncode == 0, done.stdout + done.stderr
