"""The method registry: a pruning method is one small class in one file under ``pruning/methods/``.

A method says which calibration statistics it needs and prunes one layer given them; the engine owns the
loop, devices and memory. Parameters are dataclass fields; a field with ``metadata={"flag": "--name"}``
becomes a ``hfprune prune`` option automatically, so a new method needs no CLI change.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ..errors import UnknownMethodError
from ..models import PrunableLayer
from . import masks
from .stats import LayerStats
from .structure import Structure

_REGISTRY: dict[str, type[PruningMethod]] = {}


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
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"pruning method '{cls.name}' is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> dict[str, type[PruningMethod]]:
    _load_builtin()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str, **params: Any) -> PruningMethod:
    """An instance of method ``name``; ``params`` with value ``None`` keep the method's defaults."""
    methods = available()
    if name not in methods:
        raise UnknownMethodError(f"unknown method '{name}'; available: {', '.join(methods)}")
    cls = methods[name]
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(set(params) - fields)
    if unknown:
        raise UnknownMethodError(f"method '{name}' takes no parameter(s) {', '.join(unknown)}")
    return cls(**{k: v for k, v in params.items() if v is not None})


def cli_options() -> list[tuple[str, dataclasses.Field]]:
    """(method name, field) for every parameter that declares a CLI flag."""
    out = []
    for name, cls in available().items():
        if dataclasses.is_dataclass(cls):
            out.extend((name, f) for f in dataclasses.fields(cls) if "flag" in f.metadata)
    return out


def _load_builtin() -> None:
    from . import methods  # noqa: F401  (importing registers them)
