"""What an OpenVINO IR holds: file sizes, and per weight matrix its storage type and share of exact zeros.

The zeros are read from the IR's own constants, not from the PyTorch model: they show what the runtime will
see (asymmetric int8 stores a pruned zero as its zero point, so its zeros are gone; symmetric int8 keeps them)
and which matrices are sparse enough for OpenVINO's sparse decompression to pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The IR files optimum-intel writes for a causal LM.
IR_XML = "openvino_model.xml"
IR_BIN = "openvino_model.bin"


@dataclass(frozen=True)
class WeightMatrix:
    name: str
    storage: str
    parameters: int
    zero_share: float | None  # None: packed below a byte (int4), zeros not counted


def weight_matrices(folder: Path) -> list[WeightMatrix]:
    """Every 2-D weight constant of the IR (embeddings, projections), in the IR's order."""
    import openvino as ov

    model = ov.Core().read_model(str(folder / IR_XML))
    countable = {ov.Type.i8, ov.Type.u8, ov.Type.f32, ov.Type.f16, ov.Type.bf16}
    matrices = []
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or not op.get_friendly_name().endswith("weight"):
            continue
        shape = list(op.get_output_shape(0))
        if len(shape) != 2:
            continue
        kind = op.get_element_type()
        zero_share = float(np.mean(op.get_data() == 0)) if kind in countable else None
        matrices.append(WeightMatrix(op.get_friendly_name(), kind.get_type_name(), shape[0] * shape[1], zero_share))
    return matrices


def block_zero_share(matrices: list[WeightMatrix]) -> float | None:
    """Zeros over all weights of the transformer blocks (embeddings and output layer left out: pruning keeps
    them dense), weighted by size; ``None`` when the zeros cannot be counted."""
    blocks = [m for m in matrices if ".layers." in m.name]
    if not blocks or any(m.zero_share is None for m in blocks):
        return None
    total = sum(m.parameters for m in blocks)
    return sum(m.parameters * (m.zero_share or 0.0) for m in blocks) / total


def describe(folder: Path, matrices: list[WeightMatrix], sparse_rate: float | None) -> dict[str, Any]:
    """Sizes and zeros for the export record (``matrices``: :func:`weight_matrices` of ``folder``): which matrices
    reach ``sparse_rate`` (by the CPU plugin's rule, the int8 matrices it packs sparse; whether a kernel gains
    from it depends on the processor) and their size."""
    packed = [m for m in matrices if sparse_rate is not None and (m.zero_share or 0.0) >= sparse_rate]
    return {
        "ir_bytes": sum((folder / name).stat().st_size for name in (IR_XML, IR_BIN)),
        "weight_storage": sorted({m.storage for m in matrices}),
        "block_zero_share": block_zero_share(matrices),
        "matrices": len(matrices),
        "sparse_eligible": {
            "rate": sparse_rate,
            "matrices": len(packed),
            "parameters": sum(m.parameters for m in packed),
            "names": [m.name for m in packed],
        },
    }
