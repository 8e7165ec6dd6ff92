"""Run a 2:4-pruned model on GPU sparse kernels (``torch.sparse.to_sparse_semi_structured``).

A 2:4 checkpoint is published dense with its zeros (design.md: sparse storage formats mis-load silently), so
the speed-up is opt-in at load time: every ``nn.Linear`` whose weight is exactly 2:4 along its input dimension,
and whose shape the kernels accept, gets its weight swapped for a semi-structured sparse tensor. That needs an
NVIDIA GPU with compute capability 8.0 or newer (A100, H100, RTX 30xx/40xx) and fp16/bf16 weights.

On CPU there is no such kernel: an unstructured or 2:4 model with zeros runs at dense speed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import SemiStructuredUnavailableError

#: dtypes the semi-structured kernels take for activations and weights
SUPPORTED_DTYPES = (torch.float16, torch.bfloat16)


@dataclass
class SemiStructuredReport:
    """What was converted and what stayed dense (and why)."""

    converted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # layer name -> reason


def is_two_four(weight: torch.Tensor) -> bool:
    """True when every group of 4 consecutive input weights of every row has at least 2 zeros."""
    rows, cols = weight.shape
    if cols % 4:
        return False
    zeros = (weight.reshape(rows, cols // 4, 4) == 0).sum(dim=-1)
    return bool((zeros >= 2).all())


def shape_problem(weight: torch.Tensor) -> str | None:
    """Why the kernels would refuse this weight's shape, or ``None`` when they take it."""
    limits = _kernel_class()._DTYPE_SHAPE_CONSTRAINTS.get(weight.dtype)  # the kernels' own table
    if limits is None:
        return f"dtype {weight.dtype} has no 2:4 kernel"
    rows, cols = weight.shape
    if rows < limits.sparse_min_rows or rows % limits.sparse_min_rows:
        return f"{rows} output rows is not a multiple of {limits.sparse_min_rows}"
    if cols < limits.sparse_min_cols or cols % limits.sparse_min_cols:
        return f"{cols} input columns is not a multiple of {limits.sparse_min_cols}"
    return None


def _kernel_class() -> type:
    """The subclass ``to_sparse_semi_structured`` will build (cuSPARSELt unless CUTLASS is forced)."""
    from torch.sparse import (
        SparseSemiStructuredTensor,
        SparseSemiStructuredTensorCUSPARSELT,
        SparseSemiStructuredTensorCUTLASS,
    )

    return (
        SparseSemiStructuredTensorCUTLASS
        if SparseSemiStructuredTensor._FORCE_CUTLASS
        else SparseSemiStructuredTensorCUSPARSELT
    )


def check_device(device: torch.device) -> None:
    """Refuse early, with what to do instead, where the kernels do not exist."""
    if device.type != "cuda" or not torch.cuda.is_available():
        raise SemiStructuredUnavailableError(
            f"2:4 sparse kernels need an NVIDIA GPU (compute capability 8.0+); this runs on {device}. Load the "
            "model with plain transformers instead: it gives the same outputs at dense speed"
        )
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        raise SemiStructuredUnavailableError(
            f"{torch.cuda.get_device_name(device)} has compute capability {major}.{minor}; 2:4 sparse kernels need "
            "8.0 or newer (A100, H100, RTX 30xx/40xx). Load the model with plain transformers instead"
        )


def to_semi_structured(model: nn.Module) -> SemiStructuredReport:
    """Swap the weight of every 2:4 ``nn.Linear`` for a semi-structured sparse tensor, in place.

    The model must already be on a supported GPU in fp16 or bf16. Layers that are not 2:4 (the embeddings,
    ``lm_head``, anything left dense) or whose shape the kernels refuse stay dense and are listed in the report.
    """
    from torch.sparse import to_sparse_semi_structured

    report = SemiStructuredReport()
    linears = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise SemiStructuredUnavailableError("the model has no nn.Linear layers to convert")
    check_device(linears[0][1].weight.device)
    for name, module in linears:
        weight = module.weight.detach()
        if weight.dtype not in SUPPORTED_DTYPES:
            raise SemiStructuredUnavailableError(
                f"{name} is {weight.dtype}; load the model with dtype float16 or bfloat16 for 2:4 kernels"
            )
        reason = None if is_two_four(weight) else "not 2:4 sparse"
        reason = reason or shape_problem(weight)
        if reason:
            report.skipped[name] = reason
            continue
        module.weight = nn.Parameter(to_sparse_semi_structured(weight), requires_grad=False)
        report.converted.append(name)
    if not report.converted:
        raise SemiStructuredUnavailableError(
            "no layer is 2:4 sparse; prune with `--structure 2:4` to use 2:4 kernels "
            f"(first refusals: {dict(list(report.skipped.items())[:3])})"
        )
    return report


def load_semi_structured(
    name_or_path: str | Path, *, dtype: torch.dtype = torch.float16, device: str = "cuda", revision: str | None = None
) -> tuple[nn.Module, SemiStructuredReport]:
    """Load a 2:4-pruned model (folder or Hub id) onto the GPU with 2:4 kernels for its sparse linears."""
    from .loading import load_model

    check_device(torch.device(device))
    if dtype not in SUPPORTED_DTYPES:
        raise SemiStructuredUnavailableError(f"dtype {dtype} has no 2:4 kernel; use torch.float16 or torch.bfloat16")
    model = load_model(name_or_path, revision=revision, dtype=dtype).model.to(device)
    return model, to_semi_structured(model)


__all__ = [
    "SemiStructuredReport",
    "SemiStructuredUnavailableError",
    "check_device",
    "is_two_four",
    "load_semi_structured",
    "shape_problem",
    "to_semi_structured",
]
