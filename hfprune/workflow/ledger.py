"""The record that makes ``hfprune run`` resumable: for each finished step, a hash of its inputs and its outputs.

A step is skipped on a re-run when its input hash is the recorded one and the outputs it recorded are still
there, unchanged (their sha256 is checked). Changing any option, the base model's commit, or an earlier
step's output changes the hashes downstream, so exactly the affected steps run again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..constants import LEDGER_FILE
from ..io import atomic_write_text, read_json_object, sha256_file


def input_key(inputs: dict[str, Any]) -> str:
    """A stable hash of a step's inputs (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


class Ledger:
    """Steps done in one output folder, read from and written to ``<folder>/.hfprune-run.json``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER_FILE
        self.steps: dict[str, dict[str, Any]] = {}
        #: which job the folder belongs to (model, revision, pruning settings): a re-run resumes only that job
        self.job: dict[str, Any] = {}
        try:
            recorded = read_json_object(self.path)
            self.steps, self.job = dict(recorded.get("steps", {})), dict(recorded.get("job", {}))
        except (ValueError, TypeError):  # missing or broken: nothing is known done (every step runs again)
            self.steps, self.job = {}, {}

    def is_done(self, step: str, key: str, folder: Path) -> bool:
        """Whether ``step`` finished with these inputs and its output files are still as it left them."""
        record = self.steps.get(step)
        if not record or record.get("key") != key:
            return False
        for name, digest in record.get("files", {}).items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != digest:
                return False
        return True

    def result(self, step: str) -> dict[str, Any]:
        return self.steps.get(step, {}).get("result", {})

    def record(self, step: str, key: str, folder: Path, files: list[str], result: dict[str, Any] | None = None) -> None:
        """Mark ``step`` done with these inputs, remembering the hashes of the files it produced."""
        self.steps[step] = {
            "key": key,
            "files": {name: sha256_file(folder / name) for name in files},
            "result": result or {},
        }
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"version": 1, "job": self.job, "steps": self.steps}, indent=2) + "\n")
