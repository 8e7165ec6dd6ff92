"""Generation speed of a 2:4-pruned model, dense kernels vs 2:4 sparse kernels, on an NVIDIA GPU (8.0+).

    python benchmarks/bench_semi_structured.py                    # results/semi_structured_gpu.{json,md}
    python benchmarks/bench_semi_structured.py --models llama-3.2-1b-shape --dtype bfloat16

Random-init models with real models' shapes (bench_prune.py's table; speed only, never quality), pruned 2:4
by magnitude with hfprune (no calibration needed for speed), loaded twice: plain (dense kernels on the zeros)
and through ``hfprune.models.semi_structured.to_semi_structured``. Measured per model: prefill throughput (batch x
prompt tokens per second, where 2:4 kernels help most), greedy decoding tokens/s at batch 1 and batch 16, and
the largest difference between the two models' logits. Every row records the device name. On a machine without
such a GPU the script says so and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_prune  # noqa: E402 - the same model shapes

RESULTS = Path(__file__).resolve().parent / "results"


def _timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up: kernels, caches, cuSPARSELt plans
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def measure(model, vocab: int, prompt: int, new_tokens: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    prefill_ids = torch.randint(0, vocab, (8, prompt), generator=gen).cuda()
    out: dict = {}
    with torch.no_grad():
        seconds = _timed(lambda: model(input_ids=prefill_ids, use_cache=False))
        out["prefill_tokens_per_s"] = round(prefill_ids.numel() / seconds, 1)
        for batch in (1, 16):
            ids = torch.randint(0, vocab, (batch, 32), generator=gen).cuda()
            seconds = _timed(
                lambda ids=ids: model.generate(
                    ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
                ),
                repeats=2,
            )
            out[f"decode_tokens_per_s_batch{batch}"] = round(batch * new_tokens / seconds, 1)
    return out


def run(model_name: str, dtype: torch.dtype, prompt: int, new_tokens: int) -> dict:
    from transformers import AutoModelForCausalLM

    import hfprune
    from hfprune.models.semi_structured import to_semi_structured

    folder = bench_prune._model_dir(model_name)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    hfprune.prune(model, method="magnitude", sparsity=0.5, structure="2:4", progress=False)
    model.cuda()
    ids = torch.randint(0, model.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.no_grad():
        dense_logits = model(input_ids=ids).logits.float()
    dense = measure(model, model.config.vocab_size, prompt, new_tokens)
    report = to_semi_structured(model)
    with torch.no_grad():
        sparse_logits = model(input_ids=ids).logits.float()
    sparse = measure(model, model.config.vocab_size, prompt, new_tokens)
    return {
        "model": model_name,
        "device": torch.cuda.get_device_name(),
        "dtype": str(dtype).removeprefix("torch."),
        "converted_linears": len(report.converted),
        "dense_linears": len(report.skipped),
        "max_logit_difference": round((dense_logits - sparse_logits).abs().max().item(), 4),
        "dense": dense,
        "two_four": sparse,
        "speedup": {k: round(sparse[k] / dense[k], 3) for k in dense},
    }


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# 2:4 sparse kernels vs dense on GPU",
        "",
        f"Command: `{command}`",
        "",
        "| model | device | dtype | linears on 2:4 | prefill tok/s dense | 2:4 | x | decode b1 dense | 2:4 | x | decode b16 dense | 2:4 | x |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = []
        for key in ("prefill_tokens_per_s", "decode_tokens_per_s_batch1", "decode_tokens_per_s_batch16"):
            cells += [str(r["dense"][key]), str(r["two_four"][key]), f"{r['speedup'][key]:.2f}"]
        lines.append(
            f"| {r['model']} | {r['device']} | {r['dtype']} | {r['converted_linears']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="llama-3.2-1b-shape,llama-2-7b-shape-8blocks")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(RESULTS / "semi_structured_gpu"))
    args = parser.parse_args()
    from hfprune.errors import SemiStructuredUnavailableError
    from hfprune.models.semi_structured import check_device

    try:
        check_device(torch.device("cuda"))
    except SemiStructuredUnavailableError as error:
        raise SystemExit(f"not run: {error}") from None
    rows = []
    for name in args.models.split(","):
        rows.append(run(name, getattr(torch, args.dtype), args.prompt, args.new_tokens))
        print(json.dumps(rows[-1]), flush=True)
    command = "python " + " ".join(sys.argv)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "results": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, command))
    print(markdown(rows, command))


if __name__ == "__main__":
    main()
