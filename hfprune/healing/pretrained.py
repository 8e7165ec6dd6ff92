"""Load, heal and save in one call (``hfprune heal``): the student folder hfprune wrote, a teacher from the Hub or
a folder, the healed student written atomically beside its record."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from .. import distributed
from ..constants import DEFAULT_MAX_SHARD_SIZE, METADATA_FILE, VOCAB_MAP_FILE
from ..errors import NotAPrunedFolderError
from ..io import atomic_folder, check_not_over_model, check_output, portable_command, read_json_object, write_record
from ..models import ModelSource, weights_sha256
from .checkpoints import CheckpointStore, checkpoint_folder_for
from .core import heal
from .quality import QUALITY_PLOT, plot_quality
from .result import HealResult
from .settings import HealSettings
from .training import Checkpointing, StepCallback


def read_student_record(folder: Path) -> dict[str, Any]:
    """The student's ``hfprune.json``: healing starts only from a folder hfprune wrote.

    Raises:
        NotAPrunedFolderError: no readable record (a plain model folder, or a broken one).
    """
    try:
        return read_json_object(folder / METADATA_FILE)
    except ValueError as err:
        raise NotAPrunedFolderError(
            f"{err}: healing starts from a model hfprune pruned (or trimmed), whose {METADATA_FILE} says what was "
            "removed; prune it first with `hfprune prune`, or give that output folder"
        ) from None


def heal_pretrained(
    student_folder: str | Path,
    teacher: ModelSource | str,
    out: str | Path,
    settings: HealSettings | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE,
    command: list[str] | None = None,
    on_step: StepCallback | None = None,
    progress: bool = False,
) -> HealResult:
    """Heal the pruned model in ``student_folder`` against ``teacher`` and save it to ``out``: the ``hfprune heal``
    job. Everything that can be refused is refused before training (the output, the checkpoint folder, the record,
    the tokenizers); the checkpoints (``settings.checkpoint_every``, and on Ctrl-C) go to ``<out>.hfprune-heal``
    and are removed once ``out`` is written.
    """
    settings = settings or HealSettings()
    folder = Path(student_folder).expanduser()
    teacher_source = ModelSource.of(teacher)
    check_output(out, overwrite, reads=folder)
    check_not_over_model(teacher_source.model, out)
    record = read_student_record(folder) if folder.is_dir() else {}
    store = CheckpointStore(checkpoint_folder_for(out))
    student_source = ModelSource(str(folder), dtype="auto")
    student_loaded = student_source.load(require_tokenizer=True)
    if not record:
        record = read_student_record(student_loaded.folder)
    resume_from = store.prepare(resume=resume, overwrite=overwrite)
    teacher_loaded = teacher_source.load()
    vocab_map = _vocab_map(student_loaded.folder)
    identity = {
        "student": {"weights_sha256": weights_sha256(student_loaded.folder), "record_sha256": _sha(record)},
        "teacher": _sha(teacher_record(teacher_loaded.source)),
    }
    checkpointing = Checkpointing(store, settings.checkpoint_every, resume_from, identity)
    result = heal(
        student_loaded.model,
        teacher_loaded.model,
        student_loaded.tokenizer,
        settings,
        teacher_tokenizer=teacher_loaded.tokenizer,
        vocab_map=vocab_map,
        base_tokenizer_sha256=(record.get("vocab") or {}).get("tokenizer_sha256_before"),
        exclude_hashes=(record.get("calibration") or {}).get("sample_hashes") or (),
        checkpointing=checkpointing,
        on_step=on_step,
        progress=progress,
    )
    result.record = {"teacher": teacher_record(teacher_loaded.source), **result.record}
    metadata = {**record, "healing": result.record}
    if command:
        metadata["healing"]["command"] = portable_command(list(command))

    def save() -> None:
        with atomic_folder(out, overwrite=overwrite) as tmp:
            result.model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
            student_loaded.tokenizer.save_pretrained(tmp)
            if vocab_map is not None:
                shutil.copyfile(student_loaded.folder / VOCAB_MAP_FILE, tmp / VOCAB_MAP_FILE)
            write_record(tmp / METADATA_FILE, metadata)
            if result.record.get("quality"):
                plot_quality(result.record["quality"], tmp / QUALITY_PLOT)
        store.remove()

    distributed.current().agree(save, "writing the healed model (rank 0)")
    return result


def _vocab_map(folder: Path) -> dict[str, Any] | None:
    path = folder / VOCAB_MAP_FILE
    if not path.is_file():
        return None
    try:
        return read_json_object(path)
    except ValueError as err:
        raise NotAPrunedFolderError(f"{err}: the student's {VOCAB_MAP_FILE} is broken; trim the model again") from None


def teacher_record(source: dict[str, Any]) -> dict[str, Any]:
    """The teacher as recorded (id and commit, or a local folder's name and hashes), without an earlier record."""
    return {key: value for key, value in source.items() if key != "hfprune"}


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
