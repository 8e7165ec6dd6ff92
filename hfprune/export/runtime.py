"""Running an export: the runtime settings written beside the IR, and loading it with them.

OpenVINO's sparse decompression (``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE``) is a property of the compiled model:
neither optimum's ``openvino_config.json`` nor the IR's runtime info carries it (tried: both compile at rate
1.0), so hfprune writes :data:`RUNTIME_FILE` and passes its ``ov_config`` at load. A user without hfprune reads
the same file (the card shows the three lines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..constants import EXPORT_RECORD
from ..constants import OPENVINO_RUNTIME_FILE as RUNTIME_FILE
from ..io import read_json_object, write_json
from ..models import openvino_compat as compat

__all__ = [
    "EXPORT_RECORD",
    "RUNTIME_FILE",
    "compiled_property",
    "load_openvino",
    "ov_config",
    "runtime_config",
    "write_runtime",
]
SPARSE_PROPERTY = "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"
PRECISION_PROPERTY = "INFERENCE_PRECISION_HINT"


def runtime_config(sparse_rate: float | None, block_zero_share: float | None, weights: str) -> dict[str, Any]:
    """The runtime file's content: sparse decompression on at ``sparse_rate`` (``None`` or 1.0: off); an fp32
    export also asks for fp32 arithmetic (the CPU plugin's default on a processor with bf16 is bf16, which moves
    logits by ~0.05 on the tiny model: not what a user asking for fp32 means)."""
    precision = {PRECISION_PROPERTY: "f32"} if weights == "fp32" else {}
    if sparse_rate is None or sparse_rate >= 1.0:
        return {
            "ov_config": precision,
            "why": "Sparse decompression off: "
            + (
                "OpenVINO packs sparse int8 weights only"
                if block_zero_share is None
                else f"only {block_zero_share:.0%} of the blocks' weights are zero"
                if sparse_rate is None
                else "turned off by --sparse-rate 1"
            ),
        }
    return {
        "ov_config": {SPARSE_PROPERTY: sparse_rate, **precision},
        "why": f"Sparse decompression on: {block_zero_share:.0%} of the blocks' int8 weights are zero, and matrices with at least {sparse_rate:.0%} "
        "zeros are packed sparse by OpenVINO's CPU plugin (whether a processor gains from it: see the measured speed)",
    }


def write_runtime(folder: Path, config: dict[str, Any]) -> None:
    write_json(folder / RUNTIME_FILE, config)


def ov_config(folder: str | Path, threads: int | None = None) -> dict[str, Any]:
    """The properties to compile ``folder``'s IR with: its runtime file's, plus a thread count if given."""
    path = Path(folder) / RUNTIME_FILE
    config = dict(read_json_object(path)["ov_config"]) if path.is_file() else {}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def load_openvino(folder: str | Path, *, threads: int | None = None, **kwargs: Any) -> Any:
    """``OVModelForCausalLM`` of an exported folder, compiled with its runtime settings (hfprune's adjustments
    applied first, so it runs and reuses its KV cache under this transformers)."""
    compat.prepare()
    from optimum.intel import OVModelForCausalLM

    return OVModelForCausalLM.from_pretrained(str(folder), export=False, ov_config=ov_config(folder, threads), **kwargs)


def compiled_property(model: Any, name: str) -> Any:
    """A property of the compiled model as OpenVINO reports it (what actually runs), as plain data (``f32``)."""
    value = model.request.get_compiled_model().get_property(name)
    return value.get_type_name() if hasattr(value, "get_type_name") else value
