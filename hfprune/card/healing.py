"""The card's view of healing: who taught the pruned model, on what, for how long, and what it changed.

Everything comes from the ``healing`` record of ``hfprune.json`` (written by ``hfprune heal``); per-language
quality before pruning, after pruning and after healing is shown where the evaluation results hold it (``hfprune
eval`` of the healed folder against the dense base gives the healed column; the record's losses say what the
training itself saw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..healing.quality import QUALITY_PLOT
from ..io import is_hfprune_plot


def healing_view(metadata: dict[str, Any], folder: Path | None = None) -> dict[str, Any] | None:
    """What the template's healing section shows, or ``None`` when the model was not healed."""
    record = metadata.get("healing")
    if not record:
        return None
    quality = record.get("quality") or {}
    teacher = record.get("teacher") or {}
    data = record.get("data") or {}
    start, end = record.get("loss_start") or {}, record.get("loss_end") or {}
    return {
        "teacher": teacher.get("id", "the dense model"),
        "teacher_commit": teacher.get("commit"),
        "mode": record.get("mode", "full"),
        "lora": record.get("lora"),
        "languages": record.get("languages", []),
        "tokens": record.get("tokens_seen"),
        "epochs": record.get("epochs") or 1,
        "steps": record.get("steps"),
        "seqlen": record.get("seqlen"),
        "lr": record.get("lr"),
        "temperature": record.get("temperature"),
        "kd_weight": record.get("kd_weight"),
        "hidden_weight": record.get("hidden_weight") or 0,
        "seconds": record.get("time_s"),
        "tokens_per_s": record.get("tokens_per_s"),
        "device": record.get("device"),
        "teacher_device": record.get("teacher_device"),
        "embeddings": record.get("embeddings"),
        "seeds": record.get("seeds") or {},
        "losses": [
            {"name": name, "start": f"{start[key]:.4f}", "end": f"{end[key]:.4f}"}
            for key, name in (
                ("loss", "total"),
                ("kd", "distillation (KL)"),
                ("ce", "language modelling"),
                ("hidden", "hidden states"),
            )
            if key in start and key in end
        ],
        "sparsity": record.get("achieved_sparsity"),
        "excluded": _excluded(data),
        "command": " ".join(record.get("command") or []),
        "quality": [
            {
                "lang": lang,
                "dense": f"{row['dense']:.4f}",
                "pruned": f"{row['pruned']:.4f}",
                "healed": f"{row['healed']:.4f}",
                "won_back": "n/a" if row.get("won_back") is None else f"{row['won_back']:.0%}",
                "adapter_kept": f"{row['adapter_kept']:.4f}" if row.get("adapter_kept") is not None else None,
            }
            for lang, row in (quality.get("languages") or {}).items()
        ],
        "quality_adapter": any(
            row.get("adapter_kept") is not None for row in (quality.get("languages") or {}).values()
        ),
        "quality_files": ", ".join(sorted(set((quality.get("files") or {}).values()))),
        "quality_sentences": (record.get("settings") or {}).get("quality_sentences"),
        "quality_plot": QUALITY_PLOT if folder is not None and is_hfprune_plot(Path(folder) / QUALITY_PLOT) else None,
    }


def _excluded(data: dict[str, Any]) -> str:
    """How the healing text was kept apart from the mask's samples."""
    dropped = data.get("dropped_as_mask_samples")
    total = sum(dropped.values()) if isinstance(dropped, dict) else dropped
    base = "drawn from the calibration sources with another seed, the mask's samples dropped by hash"
    return base + (f" ({total} dropped)" if total else "")
