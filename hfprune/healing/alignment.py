"""Teacher and student must speak of the same tokens: one vocabulary, or the student's trimmed map of it.

Distillation compares the two next-token distributions id by id. An untrimmed student shares the teacher's
tokenizer (checked by fingerprint). A vocabulary-trimmed student kept a subset of the teacher's ids
(``vocab_map.json``: ``old_ids[i]`` is the teacher's id of student id ``i``): the teacher reads the same text
in its own ids (student ids mapped through ``old_ids``) and its logits are cut down to ``old_ids``, so both
distributions are over the student's vocabulary (renormalised by the softmax over the kept tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import TeacherTokenizerMismatchError
from ..fingerprints import tokenizer_sha256


@dataclass(frozen=True)
class VocabularyAlignment:
    """How the teacher's ids relate to the student's: identical (``old_ids`` is ``None``) or a trimmed map."""

    student_rows: int
    old_ids: torch.Tensor | None = None

    @property
    def trimmed(self) -> bool:
        return self.old_ids is not None

    def teacher_inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """The student's token ids as the teacher's ids."""
        if self.old_ids is None:
            return ids
        return self.old_ids.to(ids.device)[ids]

    def teacher_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The teacher's logits over the student's vocabulary (its padding rows or trimmed tokens cut off)."""
        if self.old_ids is not None:
            return logits.index_select(-1, self.old_ids.to(logits.device))
        return logits[..., : self.student_rows]

    def describe(self) -> dict[str, Any]:
        return {"kind": "trimmed map (vocab_map.json)" if self.trimmed else "same tokenizer", "rows": self.student_rows}


def align(
    student_tokenizer: Any,
    teacher_tokenizer: Any,
    *,
    student_rows: int,
    teacher_rows: int,
    vocab_map: dict[str, Any] | None = None,
    base_tokenizer_sha256: str | None = None,
) -> VocabularyAlignment:
    """The alignment of a student with its teacher, or one clear refusal.

    ``vocab_map``: the student's ``vocab_map.json`` when it was trimmed; ``base_tokenizer_sha256``: the
    tokenizer it was trimmed from (its record's ``vocab.tokenizer_sha256_before``), checked against the teacher's.

    Raises:
        TeacherTokenizerMismatchError: another tokenizer, or a map that points past the teacher's vocabulary.
    """
    teacher_sha = tokenizer_sha256(teacher_tokenizer) if teacher_tokenizer is not None else None
    if vocab_map is None:
        student_sha = tokenizer_sha256(student_tokenizer)
        if teacher_sha is not None and teacher_sha != student_sha:
            raise TeacherTokenizerMismatchError(
                f"the teacher's tokenizer (sha256 {teacher_sha[:12]}) is not the student's ({student_sha[:12]}): "
                "distillation compares the next-token distributions id by id, so both must read the same ids. "
                "Give --teacher the dense model the student was pruned from"
            )
        if teacher_rows < student_rows:
            raise TeacherTokenizerMismatchError(
                f"the teacher has {teacher_rows} vocabulary rows, fewer than the student's {student_rows}; "
                "give --teacher the dense model the student was pruned from"
            )
        return VocabularyAlignment(student_rows)
    if base_tokenizer_sha256 and teacher_sha is not None and teacher_sha != base_tokenizer_sha256:
        raise TeacherTokenizerMismatchError(
            f"the student's vocabulary was trimmed from a tokenizer with sha256 {base_tokenizer_sha256[:12]}, but "
            f"the teacher's is {teacher_sha[:12]}: give --teacher the untrimmed model it was trimmed from"
        )
    old_ids = torch.tensor(vocab_map["old_ids"], dtype=torch.long)
    if old_ids.numel() != student_rows or int(old_ids.max()) >= teacher_rows or int(old_ids.min()) < 0:
        raise TeacherTokenizerMismatchError(
            f"vocab_map.json maps {old_ids.numel()} student ids into ids up to {int(old_ids.max())}, but the student "
            f"has {student_rows} rows and the teacher {teacher_rows}: give --teacher the untrimmed model it was "
            "trimmed from"
        )
    return VocabularyAlignment(student_rows, old_ids)
