"""Resumable healing: ``accelerator.save_state`` every K steps into ``<out>.hfprune-heal/``, beside ``--out``.

The folder carries :data:`HEAL_CHECKPOINT_RECORD` (step, settings, the student's and teacher's fingerprints and
the healing data's digest). ``--resume`` continues only when all of those match the run at hand, since
a checkpoint of other settings or other text would silently give a model that no single run defines. Only
a folder with that record is hfprune's: it is removed after success (its files, never a user's), and a
folder without it is never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..constants import HEAL_CHECKPOINT_RECORD, HEAL_CHECKPOINT_SUFFIX, VERSION
from ..errors import HealCheckpointError
from ..io import read_json_object, write_json

#: What marks the record as hfprune's own.
WRITTEN_BY = "hfprune heal"
_STATE_PREFIX = "step-"


def checkpoint_folder_for(out: str | Path) -> Path:
    """``<out>.hfprune-heal`` beside ``out`` (never inside it: the output is written atomically at the end)."""
    out = Path(out).expanduser().absolute()
    return out.with_name(out.name + HEAL_CHECKPOINT_SUFFIX)


class CheckpointStore:
    """The checkpoints of one healing run, in one folder hfprune owns."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def record_path(self) -> Path:
        return self.folder / HEAL_CHECKPOINT_RECORD

    def record(self) -> dict[str, Any] | None:
        """The folder's record, or ``None`` when the folder is not hfprune's (or not there)."""
        try:
            record = read_json_object(self.record_path)
        except ValueError:
            return None
        return record if record.get("written_by") == WRITTEN_BY else None

    def prepare(self, *, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """Check the folder before any work; return the record to resume from (``None``: start afresh).

        Raises:
            HealCheckpointError: ``--resume`` with nothing to resume, a folder hfprune did not write, or an
                earlier run's checkpoint without ``--resume`` or ``--overwrite``.
        """
        exists = self.folder.exists() or self.folder.is_symlink()
        record = self.record() if exists else None
        if exists and (record is None or self.folder.is_symlink()):
            raise HealCheckpointError(
                f"{self.folder} exists and hfprune did not write it (it has no {HEAL_CHECKPOINT_RECORD}); healing "
                "keeps its checkpoints there, so move that folder away, or choose another --out"
            )
        if resume:
            if record is None:
                raise HealCheckpointError(
                    f"--resume: there is no checkpoint to resume in {self.folder}; run without --resume to start"
                )
            return record
        if record is not None:
            if not overwrite:
                raise HealCheckpointError(
                    f"{self.folder} holds the checkpoint of an earlier heal at step {record.get('step')}: pass "
                    "--resume to continue it, or --overwrite to start over (the checkpoint is then deleted)"
                )
            self.remove()
        return None

    def check_matches(self, record: dict[str, Any], identity: dict[str, Any]) -> None:
        """Refuse a checkpoint whose settings, models or healing data are not this run's.

        Raises:
            HealCheckpointError: naming what differs.
        """
        recorded = record.get("identity") or {}
        differs = sorted(key for key in set(identity) | set(recorded) if recorded.get(key) != identity.get(key))
        if differs:
            detail = ""
            if "settings" in differs:
                old, new = recorded.get("settings") or {}, identity.get("settings") or {}
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                detail = f" (settings that changed: {', '.join(changed)})"
            raise HealCheckpointError(
                f"--resume: the checkpoint in {self.folder} was made with another {', '.join(differs)}{detail}; "
                "resume with the same command, or pass --overwrite without --resume to start over"
            )

    def state_dir(self, record: dict[str, Any]) -> Path:
        state = self.folder / str(record.get("state", ""))
        if not record.get("state") or not state.is_dir():
            raise HealCheckpointError(
                f"--resume: the checkpoint in {self.folder} lacks its saved state ({record.get('state')}); "
                "pass --overwrite without --resume to start over"
            )
        return state

    def save(self, accelerator: Any, step: int, identity: dict[str, Any], progress: dict[str, Any]) -> Path:
        """Save the training state at ``step``; the record names it only once it is complete (every process
        takes part, the main one writes the record and removes the older state)."""
        state = self.folder / f"{_STATE_PREFIX}{step:08d}"
        if accelerator.is_main_process:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.record() is None:  # claimed before anything else is written, so a crash leaves it ours
                write_json(self.record_path, {"written_by": WRITTEN_BY, "step": None})
        accelerator.wait_for_everyone()
        accelerator.save_state(str(state))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_json(
                self.record_path,
                {
                    "written_by": WRITTEN_BY,
                    "hfprune_version": VERSION,
                    "step": step,
                    "state": state.name,
                    "identity": identity,
                    "progress": progress,
                },
            )
            for older in self.folder.glob(f"{_STATE_PREFIX}*"):
                if older != state and older.is_dir():
                    shutil.rmtree(older, ignore_errors=True)
        accelerator.wait_for_everyone()
        return state

    def remove(self) -> None:
        """Remove what healing wrote here (its states and record); the folder goes only when nothing else is in it."""
        if self.record() is None:
            return
        for state in self.folder.glob(f"{_STATE_PREFIX}*"):
            if state.is_dir() and not state.is_symlink():
                shutil.rmtree(state, ignore_errors=True)
        self.record_path.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # a file of someone else's is in it: left as it is
