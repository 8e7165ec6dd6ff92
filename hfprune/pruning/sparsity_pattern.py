"""Sparsity patterns: unstructured, or N:M (N zeros in every M consecutive input weights of a row)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..constants import DEFAULT_SPARSITY
from ..errors import InvalidSparsityError, InvalidStructureError

_NM = re.compile(r"\s*(\d+)\s*:\s*(\d+)\s*")


@dataclass(frozen=True)
class Structure:
    """``n``/``m`` are both 0 for unstructured. ``2:4`` zeroes 2 of every 4 weights (50%), as in Wanda."""

    n: int = 0
    m: int = 0

    @property
    def is_nm(self) -> bool:
        return self.m > 0

    @property
    def sparsity(self) -> float | None:
        return self.n / self.m if self.is_nm else None

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.is_nm else "unstructured"

    @classmethod
    def parse(cls, text: str | Structure | None) -> Structure:
        """``"unstructured"`` (or None) or ``"N:M"`` with 0 < N < M."""
        if isinstance(text, Structure):
            return text
        if text is None or text.strip().lower() in ("", "unstructured"):
            return cls()
        match = _NM.fullmatch(text)
        if not match:
            raise InvalidStructureError(
                f"structure '{text}' must be 'unstructured' or N:M such as 2:4, or structured: width:F, heads:K, "
                "depth:K (comma-combined)"
            )
        n, m = int(match.group(1)), int(match.group(2))
        if not 0 < n < m:
            raise InvalidStructureError(f"structure {n}:{m}: N must be at least 1 and smaller than M")
        return cls(n, m)

    def check_widths(self, layers: Iterable[tuple[str, int]]) -> None:
        """Every layer's input width must be a multiple of M, or N:M groups would straddle rows."""
        if not self.is_nm:
            return
        bad = [(name, width) for name, width in layers if width % self.m]
        if bad:
            listed = ", ".join(f"{name} (width {width})" for name, width in bad[:3])
            raise InvalidStructureError(
                f"structure {self}: M={self.m} does not divide the input width of {len(bad)} layer(s): "
                f"{listed}{' ...' if len(bad) > 3 else ''}; choose an M that divides every width"
            )


def resolve_sparsity(sparsity: float | None, structure: Structure) -> float:
    """The target sparsity: given, or implied by N:M, or the default (0.5); given and implied must agree.

    The one place the default is decided, for the library and every command alike.
    """
    if structure.is_nm:
        implied = structure.sparsity
        assert implied is not None
        if sparsity is not None and abs(sparsity - implied) > 1e-9:
            raise InvalidSparsityError(
                f"--sparsity {sparsity} contradicts structure {structure} (which means {implied:g}); "
                "leave --sparsity out with N:M"
            )
        return implied
    if sparsity is None:
        return DEFAULT_SPARSITY
    check_sparsity(sparsity)
    return float(sparsity)


def check_sparsity(sparsity: float) -> None:
    if not (0.0 <= sparsity < 1.0) or sparsity != sparsity:
        raise InvalidSparsityError(f"sparsity must be in [0, 1), got {sparsity}")
