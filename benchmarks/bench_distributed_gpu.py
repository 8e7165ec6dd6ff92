"""1 GPU against N GPUs of one machine (torchrun, NCCL): prune and eval time, GPU memory per rank, same outputs.

    python benchmarks/bench_distributed_gpu.py                     # all GPUs; writes results/distributed_gpu.{json,md}
    python benchmarks/bench_distributed_gpu.py --gpus 2 --models llama-3.2-1b-shape --jobs prune-sparsegpt

Not run yet: no GPU was available to the work that wrote it. Each job is an ``hfprune`` command line run as
``1x0`` (one process on ``cuda:0``) and ``Nx0`` (``torchrun --nproc-per-node N``, each rank on its own GPU,
``--device cuda``); every rank reports its wall time, peak RSS and peak GPU memory, and the outputs (pruned
weights tensor for tensor, evaluation metrics) are compared. The device name is recorded with each rank.

Models (``bench_distributed.model_folder``): ``tiny``; random-init ``qwen2-0.5b-shape`` (24 blocks) and
``llama-3.2-1b-shape`` (16 blocks) with the tiny model's tokenizer (speed and memory only); or a local folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from bench_distributed import hfprune_seconds, launch, model_folder, outputs_equal  # noqa: E402

RESULTS = ROOT / "results"
JOBS = ("prune-wanda", "prune-sparsegpt", "eval")
MODELS = ("qwen2-0.5b-shape", "llama-3.2-1b-shape")
CALIB = ",".join(f"{lang}:16" for lang in ("en", "de", "fr", "es", "ru", "zh", "ar", "sw"))  # 128 x 512 tokens


def job_argv(job: str, model: str, out: Path) -> list[str]:
    folder = model if Path(model).is_dir() else str(model_folder(model))
    if job.startswith("prune-"):
        return [
            "prune",
            folder,
            "--method",
            job.removeprefix("prune-"),
            "--sparsity",
            "0.5",
            "--calib",
            CALIB,
            "--seqlen",
            "512",
            "--batch-size",
            "8",
            "--device",
            "cuda",
            "--quiet",
            "--json",
            "--out",
            str(out),
        ]
    return [
        "eval",
        folder,
        "--langs",
        "en,de,sw,zh",
        "--tasks",
        "ppl,xcopa",
        "--context-length",
        "512",
        "--batch-size",
        "8",
        "--device",
        "cuda",
        "--no-cache",
        "--json",
        "--out",
        str(out),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=torch.cuda.device_count(), help="N (default: every GPU)")
    parser.add_argument("--models", default=",".join(MODELS), help="names above, or local model folders")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--out", default=str(RESULTS / "distributed_gpu"))
    args = parser.parse_args()
    if not torch.cuda.is_available() or args.gpus < 2:
        raise SystemExit(f"this benchmark needs at least 2 GPUs; this machine has {torch.cuda.device_count()}")
    from tests.hub_mirror import free_port

    configs = ("1x0", f"{args.gpus}x0")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models.split(","):
            for job in args.jobs.split(","):
                outs = {}
                for config in configs:
                    folder = Path(scratch) / f"{Path(model).name}-{job}-{config}"
                    folder.mkdir()
                    out = folder / ("results.json" if job == "eval" else "pruned")
                    total = launch(config, job_argv(job, model, out), folder / "report", free_port())
                    ranks = [json.loads(p.read_text()) for p in sorted(folder.glob("report.rank*.json"))]
                    outs[config] = out
                    rows.append(
                        {
                            "model": model,
                            "job": job,
                            "config": config,
                            "wall_s_with_startup": round(total, 2),
                            "hfprune_s": hfprune_seconds(job, out),
                            "ranks": ranks,
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
                for row in rows[-2:]:
                    row["same_as_1_gpu"] = outputs_equal(job, outs[row["config"]], outs["1x0"])
    machine = {
        "gpus": args.gpus,
        "device_name": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "command": "python " + " ".join(sys.argv),
    }
    lines = [
        f"# 1 vs {args.gpus} GPUs ({machine['device_name']}, torch {machine['torch']}, CUDA {machine['cuda']})",
        "",
        f"Command: `{machine['command']}`",
        "",
        "| model | job | GPUs | hfprune s | command s per rank | peak GPU MB per rank | peak RSS MB per rank | wall s | same as 1 GPU |",
        "|---|---|---:|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        per = lambda key, r=r: " / ".join(str(rank.get(key)) for rank in r["ranks"])  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['job']} | {r['config'].split('x')[0]} | {r['hfprune_s']} | {per('command_s')} | "
            f"{per('gpu_peak_allocated_mb')} | {per('peak_rss_mb')} | {r['wall_s_with_startup']} | "
            f"{'yes' if r['same_as_1_gpu'] else '**no**'} |"
        )
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
