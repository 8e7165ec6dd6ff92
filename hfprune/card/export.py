"""The card's view of the exports beside the weights (``hfprune export ... --out DIR/SUBFOLDER``): how to run
each, with the size, speed and per-language quality its own verification measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..constants import EXPORT_RECORD
from ..io import read_json_object


def exports_view(folder: Path) -> list[dict[str, Any]]:
    """One entry per direct subfolder holding an export record (a broken record is left out, never guessed)."""
    views = []
    for path in sorted(folder.glob(f"*/{EXPORT_RECORD}")):
        try:
            record = read_json_object(path)
            views.append(_view(path.parent.name, record))
        except (ValueError, KeyError, TypeError):
            continue
    return views


def _view(subfolder: str, record: dict[str, Any]) -> dict[str, Any]:
    sizes, verification = record["sizes"], record["verification"]
    speed = record.get("speed") or {}
    runtime = record.get("runtime") or {}
    return {
        "subfolder": subfolder,
        "target": record["target"],
        "weights": record["weights"],
        "sym": (record.get("quantization") or {}).get("sym"),
        "ir_mb": f"{sizes['ir_bytes'] / 1e6:,.1f}",
        "safetensors_mb": f"{sizes['safetensors_bytes'] / 1e6:,.1f}",
        "ratio": f"{sizes['ratio']:.2f}",
        "zeros": record["ir"].get("block_zero_share"),
        "sparse_config": runtime.get("ov_config") or {},
        "runtime_why": runtime.get("why", ""),
        "languages": [
            {
                "lang": lang,
                "pytorch": f"{row['bits_per_byte_pytorch']:.4f}",
                "export": f"{row['bits_per_byte_export']:.4f}",
                "change": f"{row['bits_per_byte_change']:+.2%}",
                "agree": f"{row['argmax_agreement']:.1%}",
                "greedy": f"{verification['greedy'][lang]['agreeing_prefix']}/{verification['greedy'][lang]['new_tokens']}",
            }
            for lang, row in verification["languages"].items()
        ],
        "sentences": next(iter(verification["languages"].values()))["sentences"],
        "passed": verification.get("passed", False),
        "speed": None
        if not speed
        else {
            "pytorch": f"{speed['pytorch_fp32']['decode_tokens_per_s']:.1f}",
            "export": f"{speed['export']['decode_tokens_per_s']:.1f}",
            "speedup": f"{speed['speedup']:.2f}",
            "threads": record.get("threads"),
            "machine": (speed["export"].get("setup") or {}).get("machine", ""),
        },
        "versions": {
            k: v for k, v in (record.get("versions") or {}).items() if k in ("optimum-intel", "openvino", "nncf")
        },
        "command": " ".join(record.get("command") or []),
    }
