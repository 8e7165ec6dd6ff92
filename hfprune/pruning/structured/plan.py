"""How many neurons, heads and blocks a spec removes from one model, checked before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ...errors import InvalidStructuredSpecError, StructuredPruningUnsupportedError
from ...models import BlockStack, find_block_stacks
from .architecture import Family, family_of, head_layout, width_of
from .spec import StructuredSpec


@dataclass(frozen=True)
class Plan:
    """Counts per block (the same in every block, so one config describes the result) and for the model."""

    family: str
    blocks: int
    width: int
    heads: int
    kv_heads: int
    head_dim: int
    remove_neurons: int = 0
    remove_kv_groups: int = 0
    remove_blocks: int = 0

    @property
    def heads_per_group(self) -> int:
        return self.heads // self.kv_heads

    @property
    def remove_heads(self) -> int:
        return self.remove_kv_groups * self.heads_per_group

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_removal(model: nn.Module, spec: StructuredSpec) -> tuple[Plan, Family, BlockStack]:
    """The plan for ``spec`` on ``model``, its architecture family and its one stack of blocks.

    Raises:
        StructuredPruningUnsupportedError: the architecture (or an encoder-decoder model) cannot be rewritten.
        InvalidStructuredSpecError: the spec removes everything, more than exists, or a part of a key/value group.
    """
    family = family_of(model, spec)
    stacks = find_block_stacks(model)
    if len(stacks) != 1:
        raise StructuredPruningUnsupportedError(
            f"--structure {spec}: structured pruning rewrites one stack of blocks; this model has {len(stacks)}"
        )
    stack, config = stacks[0], model.config
    blocks, width = len(stack.blocks), width_of(config, family)
    heads, kv_heads, head_dim = head_layout(config) if family.attention else (0, 0, 0)
    plan = Plan(family.name, blocks, width, heads, kv_heads, head_dim)
    changes: dict[str, int] = {}
    if spec.width is not None:
        changes["remove_neurons"] = _neurons(spec, width)
    if spec.heads is not None:
        changes["remove_kv_groups"] = _kv_groups(spec, heads, kv_heads)
    if spec.depth is not None:
        if spec.depth >= blocks:
            what = "all of them" if spec.depth == blocks else "more than it has"
            raise InvalidStructuredSpecError(
                f"--structure {spec}: depth:{spec.depth} asks for {what} (this model has {blocks} blocks); remove at "
                f"most {blocks - 1}"
            )
        changes["remove_blocks"] = spec.depth
    return Plan(**{**asdict(plan), **changes}), family, stack


def _neurons(spec: StructuredSpec, width: int) -> int:
    assert spec.width is not None
    remove = round(spec.width * width)
    if remove == 0:
        raise InvalidStructuredSpecError(
            f"--structure {spec}: width:{spec.width:g} of {width} MLP neurons per block rounds to none removed; "
            f"give at least {0.5 / width:.2g}"
        )
    if remove >= width:
        raise InvalidStructuredSpecError(
            f"--structure {spec}: width:{spec.width:g} of {width} MLP neurons per block leaves no neuron; give a "
            "smaller fraction"
        )
    return remove


def _kv_groups(spec: StructuredSpec, heads: int, kv_heads: int) -> int:
    assert spec.heads is not None
    per_group = heads // kv_heads
    if kv_heads == 1:
        raise InvalidStructuredSpecError(
            f"--structure {spec}: this model's {heads} attention heads share one key/value group, and heads leave in "
            "whole groups so the attention stays valid: none can be removed (try width:F or depth:K)"
        )
    if spec.heads % per_group:
        raise InvalidStructuredSpecError(
            f"--structure {spec}: this model groups {per_group} query heads per key/value head ({heads} heads, "
            f"{kv_heads} key/value heads), and heads leave in whole groups so the attention stays valid; give a "
            f"multiple of {per_group}"
        )
    if spec.heads >= heads:
        raise InvalidStructuredSpecError(
            f"--structure {spec}: heads:{spec.heads} leaves none of the {heads} attention heads per block; remove "
            f"at most {heads - per_group}"
        )
    return spec.heads // per_group
