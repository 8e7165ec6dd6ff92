"""Gradients of the dense model on calibration text, for the gradient-based methods (SNIP, GraSP).

SNIP scores ``|W * dL/dW|`` and GraSP ``W * (H g)``, both on the *dense* model, so this pass runs once before
the sequential loop, over the whole model (not block by block: the loss needs every block). The loss is
next-token cross-entropy on each calibration sample; gradients are summed over batches, i.e. the gradient
of the summed loss. Only prunable weights get gradients, and they are kept in fp32 on the CPU.

GraSP's Hessian-gradient product uses the usual double-backward trick: with ``g`` fixed from the first pass,
``H g = d(g . dL/dW)/dW`` on each batch, summed. Fused attention kernels have no double backward, so that
pass runs scaled-dot-product attention on its plain "math" implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..calibration import CalibrationSet
from ..errors import GradientPassError
from ..models import PrunableLayer

Grads = dict[str, torch.Tensor]  # layer name -> [out, in] fp32, CPU


def _loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    inputs = {"input_ids": ids, "labels": ids, "use_cache": False}
    if getattr(model.config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids
    loss = model(**inputs).loss
    if loss is None or not torch.isfinite(loss):
        raise GradientPassError(
            f"the calibration loss is {loss}; gradient methods need a model with a language-modelling head "
            "and a finite loss on the calibration text (try fp32 weights: --dtype float32)"
        )
    return loss * ids.shape[0]  # the batch's summed loss, so batch size does not weight samples


def _as_out_in(layer: PrunableLayer, tensor: torch.Tensor) -> torch.Tensor:
    return (tensor.t() if layer.transposed else tensor).float().cpu()


@contextmanager
def _only_layer_weights_trainable(model: nn.Module, layers: list[PrunableLayer]) -> Iterator[list[nn.Parameter]]:
    previous = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    weights = [layer.module.weight for layer in layers]
    for w in weights:
        w.requires_grad_(True)
    try:
        yield weights
    finally:
        for p in model.parameters():
            p.requires_grad_(previous[id(p)])
            p.grad = None


def gradients(
    model: nn.Module,
    layers: list[PrunableLayer],
    calibration: CalibrationSet,
    *,
    batch_size: int = 8,
    hessian_gradient: bool = False,
) -> tuple[Grads, Grads]:
    """``(dL/dW, H dL/dW)`` per layer (the second empty unless ``hessian_gradient``), model where it is."""
    device = next(model.parameters()).device
    batches = [ids.to(device) for _, ids in calibration.batches(batch_size)]
    with torch.enable_grad(), _only_layer_weights_trainable(model, layers) as weights:
        sums = [torch.zeros_like(w, dtype=torch.float32) for w in weights]
        for ids in batches:
            for total, g in zip(sums, torch.autograd.grad(_loss(model, ids), weights)):
                total += g.float()
        grads = {layer.name: _as_out_in(layer, g) for layer, g in zip(layers, sums)}
        if not hessian_gradient:
            return grads, {}
        hg_sums = [torch.zeros_like(s) for s in sums]
        with sdpa_kernel([SDPBackend.MATH]):
            _hessian_gradient(model, batches, weights, sums, hg_sums)
    return grads, {layer.name: _as_out_in(layer, hg) for layer, hg in zip(layers, hg_sums)}


def _hessian_gradient(
    model: nn.Module,
    batches: list[torch.Tensor],
    weights: list[nn.Parameter],
    g: list[torch.Tensor],
    out: list[torch.Tensor],
) -> None:
    """Add ``H g`` to ``out``, batch by batch, with ``g`` held fixed."""
    for ids in batches:
        batch_g = torch.autograd.grad(_loss(model, ids), weights, create_graph=True)
        z = sum((gi.float() * fixed).sum() for gi, fixed in zip(batch_g, g))
        for total, hg in zip(out, torch.autograd.grad(z, weights)):
            total += hg.float()
