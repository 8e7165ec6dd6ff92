"""What a pruning method is: one small class in one file under ``pruning/methods/``, registered by name.

A method says which calibration statistics it needs and prunes one layer given them; the engine owns the
loop, devices and memory. Parameters are dataclass fields; a field with ``metadata={"flag": "--name"}``
becomes a ``hfprune prune`` option automatically, so a new method needs no CLI change. The catalog of
built-in methods (``available``, ``get_method``) is ``pruning/methods/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ..errors import MethodRegistrationError
from ..models import PrunableLayer
from . import masks
from .sparsity_pattern import Structure
from .stats import LayerStats

#: every registered method class by name (built-in ones register when ``pruning.methods`` is imported)
REGISTRY: dict[str, type[PruningMethod]] = {}


class PruningMethod(ABC):
    """Base class: subclasses are dataclasses registered with :func:`register`."""

    name: ClassVar[str]
    #: statistics the engine must collect for this method (see ``stats.SQ_SUM`` / ``stats.HESSIAN``)
    needs: ClassVar[frozenset[str]] = frozenset()
    #: one-line description shown by ``hfprune methods``
    summary: ClassVar[str] = ""

    @property
    def needs_calibration(self) -> bool:
        return bool(self.needs)

    @abstractmethod
    def prune_layer(
        self, layer: PrunableLayer, stats: LayerStats | None, sparsity: float, structure: Structure
    ) -> torch.Tensor:
        """Prune ``layer`` in place; return the boolean mask of pruned weights (``[out, in]``)."""

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def layerwise_profile(self) -> Any:
        """A layerwise sparsity profile that is part of the method itself (M-Wanda), or ``None``."""
        return None


class ScoreMethod(PruningMethod):
    """A method that scores weights and zeroes the lowest: magnitude, Wanda, RIA, ... ."""

    #: compare scores within each output row (Wanda) or across the whole layer (magnitude)
    per_row: ClassVar[bool] = True

    @abstractmethod
    def score(self, weight: torch.Tensor, stats: LayerStats | None) -> torch.Tensor:
        """Importance of each weight of ``weight`` (``[out, in]``, fp32); higher is kept."""

    def prune_layer(
        self, layer: PrunableLayer, stats: LayerStats | None, sparsity: float, structure: Structure
    ) -> torch.Tensor:
        weight = layer.weight
        mask = masks.select(self.score(weight.float(), stats), sparsity, structure, per_row=self.per_row)
        layer.set_weight(weight.masked_fill(mask, 0))
        return mask


def register(cls: type[PruningMethod]) -> type[PruningMethod]:
    """Class decorator adding a method under its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise MethodRegistrationError(
            f"pruning method '{cls.name}' is already registered by {REGISTRY[cls.name].__qualname__}; give "
            f"{cls.__qualname__} another name"
        )
    REGISTRY[cls.name] = cls
    return cls
