"""Zeros stay zeros: the pruning mask is captured before training and enforced twice.

A zero weight's gradient is masked in a hook, but that alone does not keep it at zero: AdamW's decoupled weight
decay and the momentum it carries move every parameter it holds. So after every optimizer step the mask is
applied again (``masked_fill_``), and at the end the zeros are counted against the mask to the last weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import MaskNotKeptError
from ..models import all_prunable_layers


@dataclass
class SparsityMasks:
    """The boolean zero masks of the prunable layers that have zeros, keyed by module name."""

    masks: dict[str, torch.Tensor]
    params: dict[str, nn.Parameter] = field(default_factory=dict, repr=False)
    _hooks: list = field(default_factory=list, repr=False)
    _on_device: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def capture(cls, model: nn.Module) -> SparsityMasks:
        """The zeros of every prunable linear layer now (layers without zeros are left out)."""
        masks, params = {}, {}
        for layer in all_prunable_layers(model):
            weight = layer.module.weight  # its own storage layout (Conv1D's [in, out] too)
            zeros = weight.detach() == 0
            if bool(zeros.any()):
                masks[layer.name] = zeros.cpu()
                params[layer.name] = weight
        return cls(masks, params)

    @property
    def zeros(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks.values()))

    def __bool__(self) -> bool:
        return bool(self.masks)

    def _mask(self, name: str, device: torch.device) -> torch.Tensor:
        cached = self._on_device.get(name)
        if cached is None or cached.device != device:
            cached = self._on_device[name] = self.masks[name].to(device)
        return cached

    def hook_gradients(self) -> None:
        """Zero the gradient of every masked weight as it is computed (trainable weights only)."""
        for name, param in self.params.items():
            if param.requires_grad:
                self._hooks.append(
                    param.register_hook(lambda grad, name=name: grad.masked_fill(self._mask(name, grad.device), 0))
                )

    def remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    @torch.no_grad()
    def apply(self, params: dict[str, nn.Parameter] | None = None) -> None:
        """Set every masked weight to exactly zero again (after each optimizer step, after a LoRA merge)."""
        for name, param in (params or self.params).items():
            param.data.masked_fill_(self._mask(name, param.device), 0)

    def rebind(self, model: nn.Module) -> None:
        """Point the masks at ``model``'s weights of the same names (after a LoRA merge replaced modules)."""
        modules = dict(model.named_modules())
        self.params = {name: modules[name].weight for name in self.masks}

    def violations(self) -> int:
        """Masked weights that are not exactly zero."""
        return int(sum(int((p.detach() != 0)[self._mask(n, p.device)].sum()) for n, p in self.params.items()))

    def verify(self) -> None:
        """Raise unless every weight that was zero is zero.

        Raises:
            MaskNotKeptError: some are not (a bug; the output is not written).
        """
        moved = self.violations()
        if moved:
            raise MaskNotKeptError(
                f"{moved} weight(s) that pruning set to zero are not zero after healing; nothing was written. "
                "Please report this with the command line"
            )
