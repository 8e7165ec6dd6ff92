"""What a healing run did: the healed model and the ``healing`` record that goes into ``hfprune.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class HealResult:
    """The healed student (a plain transformers model, adapters merged) and the record of how it was healed."""

    model: nn.Module
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def loss_start(self) -> dict[str, float]:
        return self.record.get("loss_start", {})

    @property
    def loss_end(self) -> dict[str, float]:
        return self.record.get("loss_end", {})
