"""Several processes on CPU: 2 processes x 1 thread (torchrun, gloo) vs 1 process x 2 threads, prune and eval.

    python benchmarks/bench_distributed.py                      # writes results/distributed_cpu.{json,md}
    python benchmarks/bench_distributed.py --models tiny --jobs prune-wanda,eval
    python benchmarks/bench_distributed.py --fp64-baseline fbf5e8b   # also: what exact fp64 statistics cost

Every job is an ``hfprune`` command line, run three ways: ``1x2`` (one process, ``OMP_NUM_THREADS=2``), ``2x1``
(``torchrun --nproc-per-node 2``, one thread each) and ``1x1`` (one process, one thread: the run a 2x1 launch
must equal tensor for tensor, since some CPU kernels depend on their thread count). Each rank reports its own
wall time and peak RSS; outputs (pruned weights, evaluation metrics) are compared across the three.

On a 2-core machine no speed-up is expected: the point is that the outputs are identical and what the second
process costs (a second copy of the model and of the runtime in memory, the collectives). Models:

- ``tiny``: the project's trained multilingual Llama (2 blocks, hidden 128);
- ``qwen2-0.5b-shape-6blocks``: random init with Qwen2-0.5B's shapes, 6 blocks (``bench_prune.py``'s model),
  with the tiny model's tokenizer so it can read text (speed and memory only, never quality).

Calibration: 8 languages x 4 samples x 512 tokens of the shared corpora (32 x 512, as ``bench_prune.py``).

``--fp64-baseline REV`` also times SparseGPT on the Qwen2 shape with ``bench_prune.py`` at this tree and at
commit ``REV`` (before the statistics were accumulated in fp64), in separate processes, and adds both rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CONFIGS = ("1x2", "2x1", "1x1")
LANGS = ("en", "de", "fr", "es", "ru", "zh", "ar", "sw")
CALIB = ",".join(f"{lang}:4" for lang in LANGS)
JOBS = ("prune-wanda", "prune-sparsegpt", "eval")
MODELS = ("tiny", "qwen2-0.5b-shape-6blocks")


def model_folder(name: str) -> Path:
    """A folder ``hfprune`` can read: weights, config and a tokenizer."""
    from hfprune import constants
    from hfprune.tiny_model import tiny_model_path

    tiny = tiny_model_path()
    if name == "tiny":
        return tiny
    sys.path.insert(0, str(ROOT))
    from bench_prune import _family_and_blocks, _shape_dir

    shape = _shape_dir(*_family_and_blocks(name))
    folder = constants.cache_dir() / f"bench-{name}-with-tokenizer"
    if not (folder / "config.json").is_file():
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for path in shape.iterdir():
            (tmp / path.name).symlink_to(path)
        for path in tiny.iterdir():
            if path.name.startswith(("tokenizer", "special_tokens")):
                shutil.copy(path, tmp / path.name)
        os.replace(tmp, folder)
    return folder


def job_argv(job: str, model: str, out: Path) -> list[str]:
    folder = str(model_folder(model))
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
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--json",
            "--out",
            str(out),
        ]
    tasks, langs, limit = ("ppl,xcopa", "en,sw,zh,de", "100") if model == "tiny" else ("ppl", "en,sw", "40")
    return [
        "eval",
        folder,
        "--langs",
        langs,
        "--tasks",
        tasks,
        "--limit",
        limit,
        "--context-length",
        "512",
        "--batch-size",
        "4",
        "--no-cache",
        "--json",
        "--out",
        str(out),
    ]


# --- one rank -----------------------------------------------------------------------------------------------
def worker(report: Path, argv: list[str]) -> None:
    """Run one hfprune command in this process (a rank, or the only process); write its time and peak RSS."""
    import torch

    from hfprune.cli.main import main

    started = time.perf_counter()
    code = main(argv)
    wall = time.perf_counter() - started
    rank = int(os.environ.get("RANK", "0"))
    row = {
        "rank": rank,
        "exit_code": code,
        "command_s": round(wall, 2),
        "threads": torch.get_num_threads(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if torch.cuda.is_available():
        gpu = torch.cuda.current_device()
        row.update(
            gpu=gpu,
            device_name=torch.cuda.get_device_name(gpu),
            gpu_peak_allocated_mb=round(torch.cuda.max_memory_allocated(gpu) / 2**20, 1),
        )
    Path(f"{report}.rank{rank}.json").write_text(json.dumps(row))
    if code:
        raise SystemExit(code)


# --- the three ways ---------------------------------------------------------------------------------------
def launch(config: str, argv: list[str], report: Path, port: int) -> float:
    """Start ``argv`` as ``config`` says (``PROCESSESxTHREADS``; threads 0: leave them alone); return the wall
    time including process start-up."""
    processes, threads = map(int, config.split("x"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_", "MASTER_"))}
    env.update(HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    me = [str(Path(__file__).resolve()), "--worker", str(report), "--"]
    if processes == 1:
        command = [sys.executable, *me, *argv]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={processes}",
            "--master-addr=127.0.0.1",
            f"--master-port={port}",
            *me,
            *argv,
        ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{config} {' '.join(argv[:2])} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def outputs_equal(job: str, a: Path, b: Path) -> bool:
    """Pruned weights tensor for tensor, or every evaluation metric exactly."""
    if job == "eval":
        results = [json.loads(p.read_text())["results"] for p in (a, b)]
        return [r["metrics"] for r in results[0]] == [r["metrics"] for r in results[1]]
    import torch
    from safetensors.torch import load_file

    def weights(folder: Path) -> dict:
        found: dict = {}
        for path in sorted(folder.glob("*.safetensors")):
            found.update(load_file(path))
        return found

    mine, theirs = weights(a), weights(b)
    return sorted(mine) == sorted(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)


def hfprune_seconds(job: str, out: Path) -> float | None:
    """hfprune's own timing of the work: prune_s (pruning), or the evaluation's seconds."""
    data = json.loads((out / "hfprune.json" if job != "eval" else out).read_text())
    return round(data["timings"]["prune_s"] if job != "eval" else data["seconds"], 2)


def run_job(model: str, job: str, scratch: Path, port: int) -> list[dict]:
    rows, outs = [], {}
    for config in CONFIGS:
        out = scratch / f"{model}-{job}-{config}" / ("results.json" if job == "eval" else "pruned")
        out.parent.mkdir(parents=True)
        report = scratch / f"{model}-{job}-{config}" / "report"
        total = launch(config, job_argv(job, model, out), report, port)
        ranks = [json.loads(p.read_text()) for p in sorted(report.parent.glob("report.rank*.json"))]
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
    for row in rows:
        row["same_as_1x1"] = outputs_equal(job, outs[row["config"]], outs["1x1"])
        row["same_as_1x2"] = outputs_equal(job, outs[row["config"]], outs["1x2"])
    return rows


# --- fp64 statistics: what they cost ---------------------------------------------------------------------------
def fp64_cost(baseline: str) -> list[dict]:
    """bench_prune.py's SparseGPT row on the Qwen2 shape, at this tree and at ``baseline`` (separate processes)."""
    run = ["qwen2-0.5b-shape-6blocks", "sparsegpt", "sequential"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT.parent), "archive", baseline], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        for label, tree in (
            (f"before: {baseline} (fp32 running sums)", Path(tmp)),
            ("this tree (fp64 sums)", ROOT.parent),
        ):
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "2"}
            done = subprocess.run(
                [sys.executable, str(tree / "benchmarks" / "bench_prune.py"), "--one", *run],
                env=env,
                capture_output=True,
                text=True,
                cwd=tree,
            )
            if done.returncode:
                raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
            rows.append({"code": label, **json.loads(done.stdout.strip().splitlines()[-1])})
            print(json.dumps(rows[-1]), flush=True)
    return rows


# --- report ---------------------------------------------------------------------------------------------------
def markdown(rows: list[dict], cost: list[dict], machine: dict) -> str:
    lines = [
        "# Several processes on CPU: 2 processes x 1 thread vs 1 process x 2 threads (and 1 x 1)",
        "",
        f"Command: `{machine['command']}` (at commit {machine['commit'][:12]})",
        "",
        f"Machine: {machine['cpus']} CPU cores **shared with other engineers' jobs** (load average "
        f"{machine['load_before']} when this started), torch {machine['torch']}, gloo on loopback. Times on a "
        "shared machine vary from run to run; compare rows of one run, not runs.",
        "",
        "`hfprune s`: hfprune's own timing (pruning's `prune_s`, or the evaluation's seconds), on rank 0. "
        "`command s per rank`: the hfprune command inside each process (loading, calibration text, saving "
        "included). `wall s`: the whole launch, Python start-up included. `same as 1x1` / `1x2`: pruned "
        "weights equal tensor for tensor (`torch.equal`), or every evaluation metric equal.",
        "",
        "| model | job | config | hfprune s | command s per rank | peak RSS MB per rank | wall s | same as 1x1 | same as 1x2 |",
        "|---|---|---|---:|---|---|---:|---|---|",
    ]
    for r in rows:
        per_rank = " / ".join(str(rank["command_s"]) for rank in r["ranks"])
        rss = " / ".join(f"{rank['peak_rss_mb']:.0f}" for rank in r["ranks"])
        lines.append(
            f"| {r['model']} | {r['job']} | {r['config']} | {r['hfprune_s']} | {per_rank} | {rss} | "
            f"{r['wall_s_with_startup']} | {'yes' if r['same_as_1x1'] else '**no**'} | "
            f"{'yes' if r['same_as_1x2'] else '**no**'} |"
        )
    if cost:
        lines += [
            "",
            "## What exact (fp64) statistics cost",
            "",
            "`bench_prune.py --one qwen2-0.5b-shape-6blocks sparsegpt sequential` (one process, 2 threads, 32 x 512 "
            "tokens) on the code before the change and on this tree, one after the other. The fp64 `X^T X` "
            "accumulator is twice the fp32 one (189 MB instead of 95 MB for `down_proj`'s 4864-wide input); each "
            "batch's fp32 product is made in 64 MiB row chunks and added to it.",
            "",
            "| code | prune s | forward s | prune / forward | peak RSS while pruning MB | (peak RSS - RSS before prune) / model |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for c in cost:
            lines.append(
                f"| {c['code']} | {c['prune_s']} | {c['decoder_forward_s']} | {c['ratio_vs_forward']} | "
                f"{c['peak_rss_during_prune_mb']} | {c['prune_extra_over_model']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:  # python bench_distributed.py --worker REPORT -- HFPRUNE ARGS...
        worker(Path(sys.argv[2]), sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--fp64-baseline", metavar="REV", help="also measure fp64 statistics against commit REV")
    parser.add_argument("--out", default=str(RESULTS / "distributed_cpu"))
    args = parser.parse_args()
    import torch

    sys.path.insert(0, str(ROOT.parent))
    from tests.hub_mirror import free_port

    machine = {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "command": "python " + " ".join(sys.argv),
        "load_before": round(os.getloadavg()[0], 2),
        "commit": subprocess.run(
            ["git", "-C", str(ROOT.parent), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in [name for name in args.models.split(",") if name]:  # --models "": only --fp64-baseline
            model_folder(model)  # built once, outside the timed runs
            for job in args.jobs.split(","):
                rows += run_job(model, job, Path(scratch), free_port())
    cost = fp64_cost(args.fp64_baseline) if args.fp64_baseline else []
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows, "fp64_cost": cost}, indent=2))
    out.with_suffix(".md").write_text(markdown(rows, cost, machine))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
