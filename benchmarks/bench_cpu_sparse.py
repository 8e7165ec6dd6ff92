"""What 50% unstructured sparsity does and does not bring on CPU: speed, memory, compressed size.

    python benchmarks/bench_cpu_sparse.py          # results/cpu_sparse.{json,md}

One random-init model with Qwen2-0.5B's shapes (6 blocks; bench_prune.py's table), dense and pruned 50% by
magnitude (the zeros are what matter here, not which weights). Measured: the time of a forward over 8 x 512
tokens and of greedy generation of 32 tokens (best of 3), the bytes of the weights in memory, and the size of
the decoder blocks' safetensors before and after zlib compression (what a sparse-aware download or storage
layer could save).
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_prune  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "qwen2-0.5b-shape-6blocks"


def _best(fn, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def measure(model) -> dict:
    from safetensors.torch import save

    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, model.config.vocab_size, (8, 512), generator=gen)
    prompt = torch.randint(0, model.config.vocab_size, (1, 32), generator=gen)
    with torch.no_grad():
        forward = _best(lambda: model.model(input_ids=batch, use_cache=False))
        generate = _best(lambda: model.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False))
    blocks = {n: p.detach().contiguous() for n, p in model.named_parameters() if ".layers." in n}
    raw = save(blocks)
    return {
        "forward_8x512_s": round(forward, 3),
        "generate_32_tokens_s": round(generate, 3),
        "weights_in_memory_mb": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 1),
        "blocks_safetensors_mb": round(len(raw) / 2**20, 1),
        "blocks_zlib_mb": round(len(zlib.compress(raw, 6)) / 2**20, 1),
        "zero_share_in_blocks": round(
            sum((p == 0).sum().item() for p in blocks.values()) / sum(p.numel() for p in blocks.values()), 4
        ),
    }


def main() -> None:
    from transformers import AutoModelForCausalLM

    import hfprune

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(bench_prune._model_dir(MODEL)).eval()
    dense = measure(model)
    hfprune.prune(model, method="magnitude", sparsity=0.5, device="cpu", progress=False)
    pruned = measure(model)
    command = "python " + " ".join(sys.argv)
    report = {
        "command": command,
        "model": MODEL,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "dense": dense,
        "pruned_50": pruned,
    }
    keys = list(dense)
    table = "\n".join(f"| {k} | {dense[k]} | {pruned[k]} |" for k in keys)
    md = (
        f"# 50% unstructured sparsity on CPU ({os.cpu_count()} cores, torch {torch.__version__})\n\nCommand: `{command}`\n\n"
        f"Model: {MODEL} (random init, real shapes), dense vs pruned 50% by magnitude.\n\n"
        f"| measure | dense | pruned 50% |\n|---|---:|---:|\n{table}\n"
    )
    (RESULTS / "cpu_sparse.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "cpu_sparse.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
