"""Layerwise sparsity profiles: how much of each block to prune, for any method.

* ``uniform``: every layer at the target.
* ``owl`` (Yin et al., 2023): a block's *outlier ratio* is the share of its Wanda scores ``|W| * ||X||``
  (all its layers pooled) above ``M`` times their mean, on the dense model; blocks with more outliers are
  pruned less.
* ``crosslingual`` (M-Wanda's part c, our reconstruction): a layer's *cross-lingual agreement* is the mean
  Pearson correlation, over pairs of calibration languages, of its per-language ``log RMS`` input
  activations; a block's agreement is the parameter-weighted mean over its layers. Blocks where languages
  agree least (they use their channels differently) are pruned less. With one language it is uniform.

Both map their block numbers with :func:`allocation.allocate`: within ``[s - delta, s + delta]`` and with a
parameter-weighted mean of exactly ``s``. The statistics come from one dense pass
(:func:`dense_pass.collect_dense`) before pruning starts.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..calibration import CalibrationSet
from ..errors import InvalidProfileError
from ..models import PrunableLayer
from .allocation import allocate
from .dense_pass import block_key, collect_dense
from .stats import SQ_SUM, LayerStats


@dataclass
class BlockImportance:
    """A profile's view of the dense model: one importance and one parameter count per block, in order."""

    importance: dict[str, float]
    params: dict[str, int]


@dataclass
class Allocation:
    """The sparsity each block gets; callable as the engine's ``sparsity_fn``."""

    profile: str
    target: float
    sparsity: dict[str, float]  # block key -> sparsity
    importance: dict[str, float]

    def __call__(self, layer: PrunableLayer, block_index: int, target: float) -> float:
        return self.sparsity[block_key(layer)]

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "target": self.target, "blocks": self.sparsity, "importance": self.importance}


class SparsityProfile(ABC):
    """Measure block importances on the dense model once, then allocate for any target."""

    name: ClassVar[str]
    delta: float

    def measure(
        self,
        model: nn.Module,
        calibration: CalibrationSet,
        *,
        device: Any = "cpu",
        batch_size: int = 8,
        input_cache: dict[str, Any] | None = None,
        loader: Any = None,
    ) -> BlockImportance:
        blocks = collect_dense(
            model,
            calibration,
            summarise=self.summarise_layer,
            reduce=self.reduce_block,
            needs=frozenset({SQ_SUM}),
            device=device,
            batch_size=batch_size,
            input_cache=input_cache,
            loader=loader,
        )
        return BlockImportance({k: float(b.value) for k, b in blocks.items()}, {k: b.params for k, b in blocks.items()})

    def allocate(self, measured: BlockImportance, target: float) -> Allocation:
        keys = list(measured.params)
        values = allocate(
            [measured.importance[k] for k in keys], [measured.params[k] for k in keys], target, self.delta
        )
        return Allocation(self.name, target, dict(zip(keys, values)), measured.importance)

    def build(self, model: nn.Module, calibration: CalibrationSet, target: float, **kwargs: Any) -> Allocation:
        return self.allocate(self.measure(model, calibration, **kwargs), target)

    @abstractmethod
    def summarise_layer(self, layer: PrunableLayer, stats: LayerStats) -> Any:
        """What to keep about one layer until its block is complete."""

    @abstractmethod
    def reduce_block(self, layers: list[tuple[PrunableLayer, Any]]) -> float:
        """The block's importance (higher: prune less)."""

    def describe(self) -> dict[str, Any]:
        return {"profile": self.name, **{k: v for k, v in vars(self).items()}}


@dataclass
class OwlProfile(SparsityProfile):
    name: ClassVar[str] = "owl"
    m: float = 5.0
    delta: float = 0.08

    def summarise_layer(self, layer: PrunableLayer, stats: LayerStats) -> torch.Tensor:
        return (layer.weight.float().abs() * stats.norms().to(layer.weight.device).unsqueeze(0)).flatten().cpu()

    def reduce_block(self, layers: list[tuple[PrunableLayer, Any]]) -> float:
        scores = torch.cat([s for _, s in layers])
        return float((scores > self.m * scores.mean()).float().mean())


@dataclass
class CrosslingualProfile(SparsityProfile):
    name: ClassVar[str] = "crosslingual"
    delta: float = 0.08

    def summarise_layer(self, layer: PrunableLayer, stats: LayerStats) -> tuple[float, int]:
        return cross_lingual_agreement(stats), layer.out_features * layer.in_features

    def reduce_block(self, layers: list[tuple[PrunableLayer, Any]]) -> float:
        total = sum(n for _, (_, n) in layers)
        agreement = sum(a * n for _, (a, n) in layers) / total
        return 1.0 - agreement


def cross_lingual_agreement(stats: LayerStats) -> float:
    """Mean pairwise Pearson correlation of the languages' per-channel ``log RMS``; 1.0 with one language."""
    langs = [lang for lang in stats.languages if stats.tokens.get(lang)]
    if len(langs) < 2:
        return 1.0
    logs = torch.stack([stats.rms(lang).clamp_min(1e-8).log() for lang in langs])
    centred = logs - logs.mean(1, keepdim=True)
    unit = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pairs = [float(unit[a] @ unit[b]) for a, b in itertools.combinations(range(len(langs)), 2)]
    return sum(pairs) / len(pairs)


PROFILES = ("uniform", "owl", "crosslingual")


def make_profile(name: str, *, delta: float | None = None, owl_m: float | None = None) -> SparsityProfile | None:
    """The profile called ``name`` (``None`` for uniform); ``delta`` is the half-width of its range.

    Raises:
        InvalidProfileError: an unknown name, parameters out of range, or parameters the profile does not take.
    """
    if name == "uniform" and (delta is not None or owl_m is not None):
        raise InvalidProfileError("--owl-m/--owl-lambda need --sparsity-profile owl or crosslingual")
    if name == "crosslingual" and owl_m is not None:
        raise InvalidProfileError("--owl-m applies to --sparsity-profile owl only")
    if name not in PROFILES:
        raise InvalidProfileError(f"unknown sparsity profile '{name}'; choose one of {', '.join(PROFILES)}")
    if delta is not None and not 0 <= delta < 1:
        raise InvalidProfileError(f"the profile's half-width (--owl-lambda) must be in [0, 1), got {delta}")
    if owl_m is not None and owl_m <= 0:
        raise InvalidProfileError(f"the OWL outlier threshold (--owl-m) must be positive, got {owl_m}")
    if name == "owl":
        return OwlProfile(**{k: v for k, v in {"m": owl_m, "delta": delta}.items() if v is not None})
    if name == "crosslingual":
        return CrosslingualProfile(**({"delta": delta} if delta is not None else {}))
    return None


def resolve_profile(profile: SparsityProfile | None, method: Any, structure: Any) -> SparsityProfile | None:
    """The profile to run: the user's if given (it replaces a method's own, e.g. M-Wanda's cross-lingual part),
    else the method's own.

    Under N:M every block's sparsity is fixed, so a method's own layerwise part has nothing to spread and
    is left out (M-Wanda's default includes one; ``hfprune.json`` then records a uniform profile).
    """
    own = None if structure.is_nm else method.layerwise_profile()
    chosen = profile or own
    if chosen is not None and structure.is_nm:
        raise InvalidProfileError(
            f"the {chosen.name} profile varies sparsity per block, which N:M ({structure}) fixes; "
            "use --sparsity-profile uniform with N:M"
        )
    return chosen
