"""Do the calibration sums depend on the order of the batches? fp32 running sums vs fp64 sums, measured.

    python benchmarks/bench_exact_sums.py          # writes results/exact_sums.{json,md}

The per-batch parts of every layer input's statistics (``sum_t x^2`` per channel, ``X^T X``) are collected on
the project's tiny model (every block, dense) over 8 languages x 4 samples x 512 tokens in batches of 2, then
summed in three orders: batch order, reversed, and as 2 ranks would (even batches, odd batches, then the two
partial sums). Counted: entries whose sum differs between orders, for fp32 running sums (what the engine did
before) and for fp64 sums (what it does now), and after rounding the fp64 sums to fp32 (what methods see).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
LANGS = ("en", "de", "fr", "es", "ru", "zh", "ar", "sw")


def batch_parts() -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per input (the first layer reading it), each batch's (sum of squares, X^T X), both fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfprune.calibration import build_calibration, open_source
    from hfprune.models import all_prunable_layers
    from hfprune.tiny_model import tiny_model_path

    folder = tiny_model_path()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    calib = build_calibration(tokenizer, open_source(None), ",".join(f"{l}:4" for l in LANGS), seqlen=512, seed=0)
    parts: dict[str, list] = {}
    seen: dict[int, str] = {}

    def hook(name):
        def record(module, args, output):
            owner = seen.setdefault(id(args[0]), name)
            if owner == name:
                x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
                parts.setdefault(name, []).append(((x * x).sum(0), x.t() @ x))

        return record

    handles = [layer.module.register_forward_hook(hook(layer.name)) for layer in all_prunable_layers(model)]
    with torch.no_grad():
        for _, ids in calib.batches(2):
            seen.clear()
            model(input_ids=ids, use_cache=False)
    for handle in handles:
        handle.remove()
    return parts


def orders(n: int) -> dict[str, list[list[int]]]:
    """Ways to add n batches: each a list of groups summed on their own, then added in list order."""
    return {
        "batch order": [list(range(n))],
        "reversed": [list(range(n))[::-1]],
        "2 ranks": [list(range(0, n, 2)), list(range(1, n, 2))],
    }


def total(tensors: list[torch.Tensor], groups: list[list[int]], dtype: torch.dtype) -> torch.Tensor:
    partial = []
    for group in groups:
        acc = torch.zeros_like(tensors[0], dtype=dtype)
        for i in group:
            acc += tensors[i]
        partial.append(acc)
    out = partial[0]
    for more in partial[1:]:
        out = out + more
    return out


def main() -> None:
    parts = batch_parts()
    rows = []
    for stat, index in (("sum of squares", 0), ("X^T X", 1)):
        counts = {"entries": 0, "fp32 running sums": 0, "fp64 sums": 0, "fp64 sums rounded to fp32": 0}
        for batches in parts.values():
            tensors = [b[index] for b in batches]
            ways = orders(len(tensors))
            fp32 = [total(tensors, g, torch.float32) for g in ways.values()]
            fp64 = [total(tensors, g, torch.float64) for g in ways.values()]
            counts["entries"] += fp32[0].numel()
            differ = lambda sums: int(torch.stack([s != sums[0] for s in sums[1:]]).any(0).sum())  # noqa: E731
            counts["fp32 running sums"] += differ(fp32)
            counts["fp64 sums"] += differ(fp64)
            counts["fp64 sums rounded to fp32"] += differ([s.float() for s in fp64])
        rows.append({"statistic": stat, "batches": len(next(iter(parts.values()))), **counts})
    command = "python " + " ".join(sys.argv)
    lines = [
        "# Calibration sums in three orders (batch order, reversed, 2 ranks): entries that differ",
        "",
        f"Command: `{command}`",
        "",
        "The tiny model, every distinct layer input of every block (dense), 8 languages x 4 samples x 512 tokens in "
        "batches of 2. Machine: 2 CPU cores shared with other engineers (this is a count, not a timing).",
        "",
        "| statistic | batches | entries | differ: fp32 running sums | differ: fp64 sums | differ: fp64 sums rounded to fp32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['statistic']} | {r['batches']} | {r['entries']:,} | {r['fp32 running sums']:,} | "
            f"{r['fp64 sums']:,} | {r['fp64 sums rounded to fp32']:,} |"
        )
    RESULTS.joinpath("exact_sums.json").write_text(json.dumps({"command": command, "results": rows}, indent=2))
    RESULTS.joinpath("exact_sums.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
