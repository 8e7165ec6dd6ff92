"""Healing: win back, in the user's languages, what pruning cost, by distilling from the dense model.

``settings`` is the typed :class:`HealSettings`; ``data`` draws new text that is never the mask's own;
``alignment`` relates a (trimmed) student's ids to the teacher's; ``loss`` is KD plus cross-entropy; ``masks``
keeps every pruned zero at zero; ``lora`` adds and merges adapters; ``memory`` checks the run fits;
``checkpoints`` saves and verifies resumable state; ``training`` is the accelerate loop; ``core`` heals in memory
(:func:`heal`) and ``pretrained`` loads, heals and saves (:func:`heal_pretrained`).

>>> import hfprune.healing as healing
>>> healing.heal_pretrained("pruned/", "Qwen/Qwen2.5-0.5B", "healed/", healing.HealSettings(calibration="en:1,sw:1"))
"""

from .core import heal
from .pretrained import heal_pretrained, read_student_record, teacher_record
from .result import HealResult
from .settings import HEAL_MODES, HealSettings

__all__ = [
    "HEAL_MODES",
    "HealResult",
    "HealSettings",
    "heal",
    "heal_pretrained",
    "read_student_record",
    "teacher_record",
]
