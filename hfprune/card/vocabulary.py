"""The card's view of a trimmed vocabulary: size and speed before and after, the held-out check, and what it cost
languages that were not kept.

Everything comes from the ``vocab`` record of ``hfprune.json`` (and the evaluation results when there are some).
Tokens/s appear only when they were measured (``speed`` in the record, with how and where); a number that was
not measured is never shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import is_hfprune_plot
from ..vocab.curve import CURVE_FILE
from ..vocab.verify import coverage_advice
from .results import CardResults

#: Row labels of the reasons a token stays.
REASON_LABELS = {
    "added": "special and added tokens",
    "config": "ids the configs name",
    "bytes": "byte tokens (any text still encodes)",
    "template": "the chat template's own text",
    "scripts": "written in the kept languages' scripts",
    "closure": "BPE intermediates of kept tokens",
    "corpus": "seen in the vocabulary text",
}


def vocabulary_view(
    metadata: dict[str, Any], results: CardResults | None, folder: Path | None = None
) -> dict[str, Any] | None:
    """What the template's vocabulary section shows, or ``None`` when the vocabulary was not trimmed."""
    record = metadata.get("vocab")
    if not record:
        return None
    pruned = bool(metadata.get("method"))
    after_label = "this model (trimmed + pruned)" if pruned else "this model (trimmed)"
    rows = [
        _row("vocabulary (tokens)", record.get("rows_before"), record.get("rows_after")),
        _row("parameters", record.get("parameters_before"), record.get("parameters_after")),
    ]
    files = record.get("files") or {}
    rows.append(_row("safetensors bytes", files.get("safetensors_bytes_before"), files.get("safetensors_bytes_after")))
    speed = record.get("speed") or {}
    measured = "before" in speed and "after" in speed
    if measured:
        for key, label in (("prefill_tokens_per_s", "prefill tokens/s"), ("decode_tokens_per_s", "decode tokens/s")):
            rows.append(_row(label, speed["before"].get(key), speed["after"].get(key), digits=1, ratio=True))
    verification = record.get("verification") or {}
    selection = record.get("selection") or {}
    return {
        "languages": record.get("languages", []),
        "after_label": after_label,
        "rows": [row for row in rows if row is not None],
        "reasons": [
            (REASON_LABELS.get(name, name), count)
            for name, count in (selection.get("by_reason") or {}).items()
            if count
        ],
        "merges": (selection.get("merges_kept"), selection.get("merges_before")),
        "family": record.get("family"),
        "settings": record.get("settings") or {},
        "scripts": record.get("scripts") or {},
        "speed": speed.get("after") if measured else None,
        "speed_note": speed.get("skipped"),
        "kept": _languages(verification.get("kept") or {}),
        "not_kept": _languages(verification.get("not_kept") or {}),
        "not_kept_text": _not_kept_text(verification.get("not_kept") or {}, selection),
        "not_kept_bpb": _bits_per_byte(results, set(record.get("languages", []))),
        "logits": verification.get("logits") or {},
        "chat_template": verification.get("chat_template") or {},
        "held_out": _held_out_name((verification.get("held_out") or {}).get("folder")),
        "advice": coverage_advice(verification.get("kept") or {}),
        "per_language": _per_language(record.get("per_language") or {}, record.get("settings") or {}),
        "curve": CURVE_FILE if folder is not None and is_hfprune_plot(Path(folder) / CURVE_FILE) else None,
    }


def _per_language(rows: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, str]]:
    """Each kept language: its share of the budget, tokens kept, coverage on its source and on held-out text."""
    weights = settings.get("weights") or [1.0] * len(rows)
    total = sum(weights) or 1.0
    out = []
    for (lang, row), weight in zip(rows.items(), weights):
        sources = row.get("sources") or {}
        text = sources.get("text") or {}
        listed = sources.get("word_list")
        source = f"running text ({text.get('chars', 0):,} characters)"
        if listed:
            source += f" + {listed['name']} ({listed['words']:,} words)"
        out.append(
            {
                "lang": lang,
                "weight": f"{weight / total:.0%}",
                "kept": f"{row['tokens_kept']:,} of {row['tokens_used']:,}",
                "source": source,
                "coverage_source": _share(row.get("coverage_source")),
                "coverage_held_out": _share(row.get("coverage_held_out")),
            }
        )
    return out


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _not_kept_text(reports: dict[str, Any], selection: dict[str, Any]) -> str:
    """What trimming did to languages that were not kept, from the measured held-out check."""
    measured = ", ".join(f"{lang} {row['tokens_change']:+.1%}" for lang, row in reports.items())
    if (selection.get("by_reason") or {}).get("bytes"):
        text = "their text still encodes (through byte tokens) but into more tokens"
        text += f" ({measured} tokens for the same text)" if measured else ""
        return text + ", which costs context length and speed, and the model predicts it worse."
    unknown = ", ".join(
        f"{lang} {row.get('unknown_after', 0) / max(row['tokens_after'], 1):.1%}" for lang, row in reports.items()
    )
    text = "this tokenizer has no byte fallback, so characters that no kept piece covers become the unknown token"
    return text + (f" (share of unknown tokens after trimming: {unknown})." if unknown else ".")


def _held_out_name(folder: str | None) -> str:
    """FLORES by name; another folder by its last part (a card must not show local paths)."""
    if not folder:
        return "held-out text"
    name = folder.rstrip("/").split("/")[-1]
    return "FLORES-200 devtest" if name == "flores" else f"`{name}/`"


def _row(label: str, before: Any, after: Any, digits: int = 0, ratio: bool = False) -> dict[str, str] | None:
    if before is None or after is None:
        return None
    share = (f" ({after / before:.2f}x)" if ratio else f" ({after / before:.1%})") if before else ""
    return {"label": label, "before": f"{before:,.{digits}f}", "after": f"{after:,.{digits}f}{share}"}


def _languages(reports: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "lang": lang,
            "identical": f"{row['identical_share']:.1%}" if row.get("identical_share") is not None else "n/a",
            "before": f"{row['tokens_per_byte_before']:.4f}",
            "after": f"{row['tokens_per_byte_after']:.4f}",
            "change": f"{row['tokens_change']:+.1%}",
        }
        for lang, row in reports.items()
    ]


def _bits_per_byte(results: CardResults | None, kept: set[str]) -> list[dict[str, Any]]:
    """Bits per byte of evaluated languages that were not kept (dense vs this model), when evaluated."""
    if results is None or not results.has_baseline:
        return []
    rows = []
    for table in results.tables:
        if table.task == "ppl" and table.metric == "bits_per_byte":
            rows += [row for row in table.rows if row["lang"] not in kept]
    return rows
