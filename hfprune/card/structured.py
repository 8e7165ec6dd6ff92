"""What the card shows about a structured-pruned model: sizes, what each block lost, and measured tokens/s.

Everything comes from ``hfprune.json``'s ``structured`` record (written by ``hfprune prune --structure width:F``,
``heads:K``, ``depth:K``); a folder pruned to zeros has none, and the card then shows sparsity instead.
"""

from __future__ import annotations

from typing import Any


def structured_view(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The card's view of the ``structured`` record, or ``None`` for zero-making pruning."""
    record = metadata.get("structured")
    if not isinstance(record, dict):
        return None
    plan = record.get("plan", {})
    before, after = record.get("params_before", {}), record.get("params_after", {})
    removed_blocks = set(record.get("blocks_removed", []))
    rows = {row["block"]: row for row in record.get("blocks", [])}
    blocks = []
    for index in range(plan.get("blocks", 0)):
        row = rows.get(index, {})
        refit = row.get("refit", {})
        blocks.append(
            {
                "index": index,
                "removed": index in removed_blocks,
                "neurons": len(row.get("neurons_removed", [])),
                "heads": len(row.get("query_heads_removed", [])),
                "refit": ", ".join(
                    f"`{kind}` {v['error_dropped']:.3f} → {v['error_refit']:.3f}"
                    + ("" if v.get("refit_used") else " (not used)")
                    for kind, v in refit.items()
                    if v.get("error_refit") is not None
                ),
            }
        )
    return {
        "spec": record.get("spec"),
        "lang_agg": record.get("lang_agg"),
        "refit": record.get("refit"),
        "plan": plan,
        "sizes": _sizes(before, after),
        "blocks": blocks,
        "blocks_removed": sorted(removed_blocks),
        "speed": _speed(record.get("speed")),
        "config": _config_changes(plan),
    }


def _sizes(before: dict[str, int], after: dict[str, int]) -> list[dict[str, Any]]:
    """Rows of (what, before, after, change) for parameters and bytes, whole model and blocks."""
    rows = []
    for key, label, scale in (
        ("total", "parameters", 1),
        ("blocks", "parameters in the blocks", 1),
        ("total_bytes", "weights in memory (MiB)", 2**20),
        ("blocks_bytes", "blocks' weights (MiB)", 2**20),
    ):
        if key in before and key in after and before[key]:
            rows.append(
                {
                    "what": label,
                    "before": _count(before[key] / scale, scale),
                    "after": _count(after[key] / scale, scale),
                    "change": f"{after[key] / before[key] - 1:+.1%}",
                }
            )
    return rows


def _speed(speed: dict[str, Any] | None) -> dict[str, Any] | None:
    if not speed:
        return None
    dense, pruned = speed["dense"], speed["pruned"]
    rows = []
    for key, label, digits in (
        ("prefill_tokens_per_s", "prefill tokens/s", ",.0f"),
        ("decode_tokens_per_s", "decode tokens/s", ",.1f"),
        ("decode_ms_per_token", "ms per decoded token", ".2f"),
        ("blocks_decode_ms_per_token", "the blocks' ms per decoded token", ".2f"),
    ):
        rows.append(
            {
                "what": label,
                "dense": format(dense[key], digits),
                "pruned": format(pruned[key], digits),
                "change": f"{pruned[key] / dense[key] - 1:+.1%}",
            }
        )
    setup = dense.get("setup", {})
    how = (
        f"measured by hfprune when pruning, on {setup.get('device', '?')} with {setup.get('threads', '?')} threads, "
        f"{setup.get('dtype', '?')}, batch 1, a {setup.get('prompt_tokens', '?')}-token prompt and "
        f"{setup.get('new_tokens', '?')} greedy tokens with plain `generate`, {setup.get('statistic', '')}; "
        f"{setup.get('how', '')}"
    )
    return {"rows": rows, "how": how}


def _config_changes(plan: dict[str, Any]) -> list[str]:
    changes = []
    if plan.get("remove_neurons"):
        changes.append(f"MLP width {plan['width']} → {plan['width'] - plan['remove_neurons']}")
    if plan.get("remove_kv_groups"):
        per_group = plan["heads"] // plan["kv_heads"]
        kv = plan["kv_heads"] - plan["remove_kv_groups"]
        changes.append(
            f"attention heads {plan['heads']} → {kv * per_group} (key/value heads {plan['kv_heads']} → {kv})"
        )
    if plan.get("remove_blocks"):
        changes.append(f"blocks {plan['blocks']} → {plan['blocks'] - plan['remove_blocks']}")
    return changes


def _count(value: float, scale: int) -> str:
    return f"{value:,.1f}" if scale > 1 else f"{int(value):,}"
