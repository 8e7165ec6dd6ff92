"""Gradients of the dense model on calibration text, for the gradient-based methods (SNIP, GraSP).

SNIP scores ``|W * dL/dW|`` and GraSP ``W * (H g)``, both on the *dense* model, so this pass runs once before
the sequential loop, over the whole model (not block by block: the loss needs every block). The loss is
next-token cross-entropy on each calibration sample; gradients are summed over batches, i.e. the gradient
of the summed loss. Only prunable weights get gradients, and they are kept in fp32 on the CPU.

Each batch's gradient is fp32, their sum an fp64 accumulator rounded to fp32 once (exact, hence independent
of batch order): on several processes each rank sums its own batches and one fp64 all-reduce gives every rank
the single-process gradient, bit for bit (as for the activation statistics, ``pruning.stats``).

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
from ..distributed import Group
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
    group: Group | None = None,
) -> tuple[Grads, Grads]:
    """``(dL/dW, H dL/dW)`` per layer (the second empty unless ``hessian_gradient``), model where it is.

    ``group``: ranks sharing the batches (each takes batch ``i`` if ``i % size == rank``); sums over them.
    """
    group = group or Group()
    device = next(model.parameters()).device
    every = calibration.batches(batch_size)
    batches = [every[i][1].to(device) for i in group.share(len(every))]
    with torch.enable_grad(), _only_layer_weights_trainable(model, layers) as weights:
        sums = [torch.zeros_like(w, dtype=torch.float64) for w in weights]
        for ids in batches:
            for total, g in zip(sums, torch.autograd.grad(_loss(model, ids), weights)):
                total.add_(g)
        group.all_reduce_(sums, "summing the calibration gradients")
        totals = [s.float() for s in sums]
        del sums
        grads = {layer.name: _as_out_in(layer, g) for layer, g in zip(layers, totals)}
        if not hessian_gradient:
            return grads, {}
        hg_sums = [torch.zeros_like(s, dtype=torch.float64) for s in totals]
        with sdpa_kernel([SDPBackend.MATH]):
            _hessian_gradient(model, batches, weights, totals, hg_sums)
        group.all_reduce_(hg_sums, "summing the Hessian-gradient products")
    return grads, {layer.name: _as_out_in(layer, hg.float()) for layer, hg in zip(layers, hg_sums)}


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
            total.add_(hg)
