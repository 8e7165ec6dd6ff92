"""hfprune against llm-compressor's ``oneshot`` on the same model, calibration tokens and machine.

    python3 -m venv /tmp/llmc-venv && /tmp/llmc-venv/bin/pip install torch==2.13.0 && /tmp/llmc-venv/bin/pip install llmcompressor
    python benchmarks/bench_peer.py --llmc-python /tmp/llmc-venv/bin/python     # results/peer_cpu.{json,md}

For each method (SparseGPT, Wanda) both tools prune the same random-init model (bench_prune.py's shapes,
default Qwen2-0.5B's with 6 blocks) at 50% unstructured on the same 32 x 512 tokens, each in its own process,
sequential pipeline, the same calibration batch for both (``--batch-size``, default 8), lm_head left dense. Reported: each tool's pruning wall time (llm-compressor: the
``oneshot`` call; hfprune: ``hfprune.prune``), peak RSS of the process, and the quality of the result:
- mask agreement: the share of weights in the decoder's linears on which both tools agree (pruned or kept);
- reconstruction error: ``||h_dense - h_pruned||^2 / ||h_dense||^2`` of the decoder's last hidden state over
  the calibration tokens (lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_prune  # noqa: E402 - the same models and calibration tokens

RESULTS = Path(__file__).resolve().parent / "results"
PEER = Path(__file__).resolve().parent / "peer_llmcompressor.py"


def run_hfprune(model_name: str, method: str, out: str) -> dict:
    """One hfprune run in this (fresh) process; saves the decoder weights like the peer script does."""
    from safetensors.torch import save_file

    row = bench_prune.run_one(model_name, method, "sequential", keep_model=True)
    model = row.pop("_model")
    save_file(
        {n: p.detach().contiguous() for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2}, out
    )
    return {
        "tool": "hfprune",
        "method": method,
        "seconds": row["prune_s"],
        "peak_rss_mb": row["peak_rss_during_prune_mb"],
    }


def compare(model_name: str, files: dict[str, str]) -> dict[str, dict]:
    """Mask agreement between the tools and each tool's reconstruction error of the decoder's output."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(bench_prune._model_dir(model_name)).eval()
    calib = bench_prune._calibration(model_name, None, model.config.vocab_size)
    dense_state = {n: p.detach().clone() for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2}
    dense_out = _decoder_outputs(model, calib)
    pruned = {tool: load_file(path) for tool, path in files.items()}
    result: dict[str, dict] = {}
    for tool, weights in pruned.items():
        model.load_state_dict(weights, strict=False)
        outputs = _decoder_outputs(model, calib)
        error = sum(((d - o) ** 2).sum().item() for d, o in zip(dense_out, outputs)) / sum(
            (d**2).sum().item() for d in dense_out
        )
        zeros = sum((w == 0).sum().item() for w in weights.values()) / sum(w.numel() for w in weights.values())
        result[tool] = {"reconstruction_error": error, "sparsity": zeros}
        model.load_state_dict(dense_state, strict=False)
    a, b = (pruned[t] for t in ("hfprune", "llm-compressor"))
    agree = sum(((a[n] == 0) == (b[n] == 0)).sum().item() for n in a) / sum(w.numel() for w in a.values())
    result["mask_agreement"] = {"share": agree}
    return result


def _decoder_outputs(model, calib) -> list[torch.Tensor]:
    with torch.no_grad():
        return [
            model.model(input_ids=ids, use_cache=False).last_hidden_state for _, ids in calib.batches(bench_prune.BATCH)
        ]


def markdown(report: dict) -> str:
    lines = [
        f"# hfprune vs llm-compressor {report['peer_version']} on CPU ({report['machine']['cpus']} cores)",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Model: {report['model']} (random init, real shapes), 50% unstructured, 32 x 512 calibration tokens, "
        f"sequential pipeline, batch {report.get('batch_size', 8)} for both, lm_head dense.",
        "",
        "| method | hfprune s | llm-compressor s | hfprune / llm-compressor | hfprune peak RSS MB | llm-compressor peak RSS MB "
        "| mask agreement | hfprune recon. error | llm-compressor recon. error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['method']} | {r['hfprune']['seconds']} | {r['llm-compressor']['seconds']} | {r['time_ratio']:.3f} "
            f"| {r['hfprune']['peak_rss_mb']} | {r['llm-compressor']['peak_rss_mb']} | {r['mask_agreement']:.4f} "
            f"| {r['hfprune']['reconstruction_error']:.5f} | {r['llm-compressor']['reconstruction_error']:.5f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llmc-python", required=True, help="python of the virtual environment with llmcompressor")
    parser.add_argument("--model", default="qwen2-0.5b-shape-6blocks")
    parser.add_argument("--methods", default="sparsegpt,wanda")
    parser.add_argument("--one-hfprune", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "peer_cpu"))
    parser.add_argument("--batch-size", type=int, default=8, help="calibration samples per block call, both tools")
    args = parser.parse_args()
    bench_prune._set_batch(args.batch_size)
    if args.one_hfprune:
        print(json.dumps(run_hfprune(*args.one_hfprune)))
        return
    folder = bench_prune._model_dir(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            files = {
                "hfprune": f"{tmp}/hfprune-{method}.safetensors",
                "llm-compressor": f"{tmp}/llmc-{method}.safetensors",
            }
            ours = _last_json(
                [
                    sys.executable,
                    __file__,
                    "--llmc-python",
                    args.llmc_python,
                    "--batch-size",
                    str(args.batch_size),
                    "--one-hfprune",
                    args.model,
                    method,
                    files["hfprune"],
                ]
            )
            peer = _last_json(
                [args.llmc_python, str(PEER), str(folder), method, files["llm-compressor"], str(args.batch_size)]
            )
            quality = compare(args.model, files)
            row = {
                "method": method,
                "hfprune": {**ours, **quality["hfprune"]},
                "llm-compressor": {**peer, **quality["llm-compressor"]},
                "time_ratio": ours["seconds"] / peer["seconds"],
                "mask_agreement": quality["mask_agreement"]["share"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {
        "command": "python " + " ".join(sys.argv),
        "model": args.model,
        "batch_size": args.batch_size,
        "peer_version": rows[0]["llm-compressor"]["version"],
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "platform": platform.platform()},
        "results": rows,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def _last_json(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
