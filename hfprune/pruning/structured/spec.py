"""What to remove: ``width:F`` (MLP neurons), ``heads:K`` (attention heads), ``depth:K`` (blocks), combinable.

``--structure`` keeps meaning ``unstructured`` or N:M for zero-making methods; a value made of ``kind:value`` parts
with the kinds below asks for *structured* pruning, which removes whole structures and leaves a smaller dense
model that a stock ``transformers`` config describes:

* ``width:F``: remove the fraction ``F`` (0 < F < 1) of every block's MLP neurons, the same number in every block,
  so that one ``intermediate_size`` still describes the model;
* ``heads:K``: remove ``K`` attention (query) heads from every block, in whole key/value groups with their query
  heads, so grouped-query attention stays valid (``K`` must be a multiple of the heads per key/value head);
* ``depth:K``: remove ``K`` whole blocks.

Structured pruning sets no zeros, so ``--sparsity``, N:M and layerwise sparsity profiles contradict it; its
importance scores are Wanda-style (weights x per-language activation norms), so ``--method`` stays ``wanda``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidStructuredSpecError
from ..sparsity_pattern import Structure

#: the kinds of structure, in the order they are written back
KINDS = ("width", "heads", "depth")
_PART = re.compile(r"\s*([a-z0-9]+)\s*:\s*([^,\s]+)\s*")


@dataclass(frozen=True)
class StructuredSpec:
    """Structures to remove; ``None`` means that kind is left alone."""

    width: float | None = None
    heads: int | None = None
    depth: int | None = None

    def __str__(self) -> str:
        parts = [f"{kind}:{getattr(self, kind):g}" for kind in KINDS if getattr(self, kind) is not None]
        return ",".join(parts)

    def describe(self) -> dict[str, Any]:
        return {kind: getattr(self, kind) for kind in KINDS}

    @classmethod
    def parse(cls, text: str) -> StructuredSpec:
        """``"width:0.25"``, ``"heads:2,depth:4"``, ...; every kind at most once.

        Raises:
            InvalidStructuredSpecError: an unknown kind, a kind given twice, a value out of range, or N:M mixed in.
        """
        values: dict[str, float | int] = {}
        for part in text.split(","):
            match = _PART.fullmatch(part)
            if not match:
                raise InvalidStructuredSpecError(
                    f"structure '{text}': '{part.strip()}' is not KIND:VALUE; write e.g. width:0.25,depth:2"
                )
            kind, value = match.group(1), match.group(2)
            if kind not in KINDS:
                hint = " (N:M sparsity and structured removal cannot be combined)" if kind.isdigit() else ""
                raise InvalidStructuredSpecError(
                    f"structure '{text}': unknown kind '{kind}'; structured kinds are {', '.join(KINDS)}{hint}"
                )
            if kind in values:
                raise InvalidStructuredSpecError(f"structure '{text}' gives {kind} twice; give each kind once")
            values[kind] = _fraction(value, text) if kind == "width" else _count(kind, value, text)
        return cls(**values)  # type: ignore[arg-type]

    def check_settings(
        self, *, sparsity: float | None, method: str, method_params: dict[str, Any], profile: Any
    ) -> None:
        """Refuse options that make sense only for zero-making pruning (see the module docstring)."""
        if sparsity is not None:
            raise InvalidStructuredSpecError(
                f"--sparsity {sparsity:g} contradicts --structure {self}: structured pruning removes whole neurons, "
                "heads or blocks and sets no zeros; say how much to remove in the structure (e.g. width:0.25) and "
                "leave --sparsity out"
            )
        if method != "wanda" or method_params:
            raise InvalidStructuredSpecError(
                f"--structure {self} scores structures Wanda-style (weights x per-language activation norms); "
                f"--method {method}{' and its options' if method_params else ''} do not apply: leave them out"
            )
        name = profile if isinstance(profile, str) or profile is None else getattr(profile, "name", str(profile))
        if name not in (None, "uniform"):
            raise InvalidStructuredSpecError(
                f"--sparsity-profile {name} spreads zeros over blocks, which --structure {self} does not make; "
                "leave it out (width removes the same number of neurons in every block)"
            )


def is_structured(text: object) -> bool:
    """Whether a ``--structure`` value asks for structured removal (rather than unstructured or N:M)."""
    if isinstance(text, StructuredSpec):
        return True
    if not isinstance(text, str):
        return False
    kinds = {part.split(":", 1)[0].strip().lower() for part in text.split(",")}
    return bool(kinds & set(KINDS))


def parse_structure(text: str | Structure | StructuredSpec | None) -> Structure | StructuredSpec:
    """Any ``--structure`` value: :class:`StructuredSpec` for structured kinds, else :class:`Structure`."""
    if isinstance(text, (Structure, StructuredSpec)):
        return text
    if text is not None and is_structured(text):
        return StructuredSpec.parse(text)
    return Structure.parse(text)


def _fraction(value: str, text: str) -> float:
    try:
        fraction = float(value)
    except ValueError:
        raise InvalidStructuredSpecError(f"structure '{text}': width '{value}' is not a number") from None
    if not 0.0 < fraction < 1.0:
        raise InvalidStructuredSpecError(
            f"structure '{text}': width must be a fraction of the MLP neurons strictly between 0 and 1, got {value}"
        )
    return fraction


def _count(kind: str, value: str, text: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise InvalidStructuredSpecError(f"structure '{text}': {kind} '{value}' is not a whole number") from None
    if count < 1:
        raise InvalidStructuredSpecError(f"structure '{text}': {kind} must be at least 1, got {count}")
    return count
