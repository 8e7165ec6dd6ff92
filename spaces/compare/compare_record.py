"""What the pruned model says about itself: its ``hfprune.json`` (method, sparsity, base model) and the header
the page shows from it.

Plain models without a record work too; the header then just says less. The three file names are copies of
hfprune's constants (a Space has no hfprune); tests/space/test_copied_constants.py pins them to the originals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download

METADATA_FILE = "hfprune.json"
LOCAL_RECORD = ".hfprune-local.json"
PLOT_FILE = "eval_results.png"


def read_pruned_record(pruned: str) -> dict[str, Any]:
    """The pruned model's ``hfprune.json`` (method, sparsity, calibration, base model), or ``{}``."""
    path = model_file(pruned, METADATA_FILE)
    if path is None:
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: the header just says less
        return {}
    return record if isinstance(record, dict) else {}


def default_dense(record: dict[str, Any], pruned: str | None = None) -> str | None:
    """The base model the pruned one was made from, as recorded by hfprune: a Hub id, or a local folder whose
    path hfprune keeps beside a local pruned folder in a dot-file that is never published."""
    base = record.get("base_model") or {}
    if not isinstance(base, dict):
        return None
    if base.get("local"):
        local = Path(pruned or "").expanduser() / LOCAL_RECORD
        try:
            return json.loads(local.read_text(encoding="utf-8"))["base_model_path"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return base.get("id")


def model_file(model_id: str, filename: str) -> Path | None:
    """``filename`` from a model folder or its Hub repo; ``None`` when it has none (plain, non-hfprune models)."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    try:
        return Path(hf_hub_download(model_id, filename))
    except Exception:  # noqa: BLE001 - missing file, offline, no access: the header just says less
        return None


def header_markdown(dense: str, pruned: str, record: dict[str, Any]) -> str:
    """Both model ids and how the pruned one was made, as a short list."""
    rows = [("Dense model", f"`{dense}`"), ("Pruned model", f"`{pruned}`")]
    if record:
        achieved, target = record.get("achieved_sparsity"), record.get("target_sparsity")
        sparsity = (
            f"{achieved:.1%} of the pruned layers' weights are zero"
            if isinstance(achieved, (int, float))
            else "unknown"
        )
        if isinstance(target, (int, float)):
            sparsity += f" (target {target:.0%}, {record.get('structure', 'unstructured')})"
        calibration = record.get("calibration") or {}
        mix = calibration.get("mix") if calibration.get("used", True) else None
        structured = record.get("structured")
        if isinstance(structured, dict):  # whole neurons, heads or blocks removed: a smaller dense model, no zeros
            before, after = structured.get("params_before") or {}, structured.get("params_after") or {}
            sparsity = f"none: structures removed (`{structured.get('spec')}`)"
            if before.get("total") and after.get("total"):
                sparsity += f", {before['total']:,} -> {after['total']:,} parameters"
        if record.get("method"):
            rows += [
                ("Method", f"`{record.get('method', 'unknown')}`"),
                ("Sparsity", sparsity),
                ("Calibration mix", f"`{mix}`" if mix else "none (the method needs no calibration data)"),
            ]
        vocab = record.get("vocab") or {}
        if vocab:
            rows.append(
                (
                    "Vocabulary",
                    f"trimmed to the tokens of {', '.join(vocab.get('languages', []))}: "
                    f"{vocab.get('rows_after', 0):,} of {vocab.get('rows_before', 0):,} tokens kept",
                )
            )
    else:
        rows.append(("Pruning record", f"no `{METADATA_FILE}` found for the pruned model"))
    lines = "\n".join(f"- **{name}:** {value}" for name, value in rows)
    return f"## Dense vs pruned\n\n{lines}\n{size_markdown(record)}"


def size_markdown(record: dict[str, Any]) -> str:
    """Parameters, file bytes and (when hfprune measured them) tokens/s of the dense and the pruned model.

    Only a trimmed vocabulary changes these (pruned zeros are stored and multiplied like any weight); the numbers
    come from the pruned model's ``hfprune.json``. Tokens/s are shown only when they were measured, with how.
    """
    vocab = record.get("vocab") or {}
    if not vocab:
        return ""
    files = vocab.get("files") or {}
    speed = vocab.get("speed") or {}
    rows = [
        ("parameters", vocab.get("parameters_before"), vocab.get("parameters_after"), "{:,.0f}"),
        ("safetensors bytes", files.get("safetensors_bytes_before"), files.get("safetensors_bytes_after"), "{:,.0f}"),
    ]
    measured = "before" in speed and "after" in speed
    if measured:
        for key, label in (("prefill_tokens_per_s", "prefill tokens/s"), ("decode_tokens_per_s", "decode tokens/s")):
            rows.append((label, speed["before"].get(key), speed["after"].get(key), "{:,.1f}"))
    lines = [
        f"| {label} | {form.format(before)} | {form.format(after)} | {after / before:.2f}x |"
        for label, before, after, form in rows
        if isinstance(before, (int, float)) and isinstance(after, (int, float)) and before
    ]
    if not lines:
        return ""
    note = (
        f"\nTokens/s: {speed['after'].get('how', '')}, on {speed['after'].get('device', '?')} "
        f"({speed['after'].get('threads', '?')} threads), measured by hfprune when the model was made.\n"
        if measured
        else "\nGeneration speed was not measured when the model was made, so none is shown.\n"
    )
    table = "| | dense | pruned | ratio |\n|---|---:|---:|---:|\n" + "\n".join(lines) + "\n"
    return f"\n### Size and speed\n\n{table}{note}"
