"""Keep the dense prunable weights in memory so one loaded model can be pruned many times.

Loading a model dominates small sweeps; pruning only ever changes the prunable linear weights, so copying
those back restores the dense model exactly (embeddings, norms and the head are never touched).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import all_prunable_layers


class DenseWeights:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._weights = {layer.name: layer.weight.detach().clone() for layer in all_prunable_layers(model)}

    def restore(self) -> None:
        for layer in all_prunable_layers(self.model):
            layer.set_weight(self._weights[layer.name])

    def check_restored(self) -> bool:
        """True when every prunable weight equals its dense copy (a guard for tests)."""
        return all(torch.equal(layer.weight, self._weights[layer.name]) for layer in all_prunable_layers(self.model))
