"""Time and peak memory of ``hfprune.prune`` on CPU, against one plain forward pass over the same tokens.

    python benchmarks/bench_prune.py                      # the default grid, writes results/prune_cpu.{json,md}
    python benchmarks/bench_prune.py --runs tiny:wanda:sequential,qwen2-0.5b-shape-6blocks:sparsegpt:independent

Each run (model, method, pipeline) is its own process so peak RSS belongs to that run alone. Models:
- ``tiny``: the project's trained multilingual Llama; calibration = 8 languages x 4 samples from the shared data.
- ``qwen2-0.5b-shape[-Nblocks]``: random init with Qwen2-0.5B's layer shapes (hidden 896, MLP 4864, GQA 14/2,
  vocab 151936; 24 blocks unless ``-Nblocks``).
- ``llama-3.2-1b-shape[-Nblocks]``: random init with Llama-3.2-1B's shapes (hidden 2048, MLP 8192, GQA 32/8,
  vocab 128256; 16 blocks unless ``-Nblocks``).
- ``MODEL:METHOD:stream``: ``hfprune prune --stream`` (blocks read from and written to safetensors one at a
  time); its peak RSS covers the whole job, reading and writing included.
Random tokens stand in for text on the random models (speed and memory only, never quality). Calibration is
32 samples x 512 tokens everywhere.

The reference is one plain forward of the decoder stack (embeddings, blocks, final norm; no LM head) over the
same calibration batches: that is what pruning has to run at least once. Peak RSS is measured after that
forward's memory is handed back to the OS (``malloc_trim``), so it is pruning's own peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SAMPLES, SEQLEN, BATCH = 32, 512, 2  # batch: hfprune prune's default
#: model:method:pipeline runs of the default grid
DEFAULT_RUNS = (
    [f"tiny:{m}:sequential" for m in ("magnitude", "wanda", "sparsegpt", "mwanda")]
    + [f"qwen2-0.5b-shape-6blocks:{m}:{p}" for m in ("wanda", "sparsegpt") for p in ("sequential", "independent")]
    + ["qwen2-0.5b-shape-6blocks:mwanda:sequential", "qwen2-0.5b-shape-6blocks:magnitude:sequential"]
    + ["qwen2-0.5b-shape:wanda:sequential", "qwen2-0.5b-shape:wanda:independent"]
    + [f"llama-3.2-1b-shape-4blocks:{m}:sequential" for m in ("wanda", "sparsegpt")]
)
#: family -> (transformers config class name, default blocks, config arguments)
SHAPES = {
    "qwen2-0.5b-shape": (
        "Qwen2Config",
        24,
        dict(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            tie_word_embeddings=True,
        ),
    ),
    "llama-3.2-1b-shape": (
        "LlamaConfig",
        16,
        dict(
            vocab_size=128256,
            hidden_size=2048,
            intermediate_size=8192,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            max_position_embeddings=131072,
            tie_word_embeddings=True,
            rope_theta=500000.0,
        ),
    ),
    "llama-2-7b-shape": (
        "LlamaConfig",
        32,
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
        ),
    ),
}


def _shape_dir(family: str, blocks: int) -> Path:
    """A random-init model with a real model's shapes, saved once (safetensors) so every run loads the same weights."""
    import transformers
    from transformers import AutoModelForCausalLM

    from hfprune.constants import cache_dir

    folder = cache_dir() / f"bench-{family}-{blocks}blocks"
    if (folder / "config.json").is_file():
        return folder
    config_class, _, arguments = SHAPES[family]
    config = getattr(transformers, config_class)(num_hidden_layers=blocks, **arguments)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    os.replace(tmp, folder)
    return folder


def _calibration(name: str, tokenizer, vocab: int):
    from hfprune.calibration import CalibrationSet, build_calibration, open_source

    if name == "tiny":
        from hfprune.tiny_model import LANGUAGES

        mix = ",".join(f"{lang}:{SAMPLES // len(LANGUAGES)}" for lang in LANGUAGES)
        return build_calibration(tokenizer, open_source(None), mix, seqlen=SEQLEN, seed=0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (SAMPLES, SEQLEN), generator=gen)
    langs = [("en", "sw", "de", "zh")[i % 4] for i in range(SAMPLES)]
    return CalibrationSet.from_tensors(ids, langs)


def _model_dir(name: str) -> Path:
    if name == "tiny":
        from hfprune.tiny_model import tiny_model_path

        return tiny_model_path()
    family, blocks = _family_and_blocks(name)
    return _shape_dir(family, blocks)


def _family_and_blocks(name: str) -> tuple[str, int]:
    if name.endswith("blocks"):
        family, _, blocks = name.rpartition("-")
        return family, int(blocks.removesuffix("blocks"))
    return name, SHAPES[name][1]


def _release_freed_memory() -> None:
    """Give freed heap back to the OS so the next peak measures live memory, not glibc's free lists."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (``VmRSS``, ``VmHWM``) in MB; ``None`` off Linux."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def _current_rss_mb() -> float:
    return _status_mb("VmRSS") or 0.0


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(model_name: str, method: str, pipeline: str, keep_model: bool = False, device: str = "cpu") -> dict:
    """Load, time one plain forward, prune, report. Runs in a fresh process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hfprune
    from hfprune.system import return_large_buffers_promptly

    return_large_buffers_promptly()  # as the hfprune command does
    runtime_mb = _current_rss_mb()  # python + torch + transformers, before any model
    torch.manual_seed(0)
    folder = _model_dir(model_name)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder) if model_name == "tiny" else None
    calib = _calibration(model_name, tokenizer, model.config.vocab_size)
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    decoder_forward_s = _decoder_forward_seconds(model, calib, device)

    _release_freed_memory()
    before_mb = _current_rss_mb()  # runtime + model + calibration ids + what the forward left (thread pools)
    _reset_peak_rss()
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    result = hfprune.prune(
        model, method=method, sparsity=0.5, calibration=calib, batch_size=BATCH, device=device, pipeline=pipeline
    )
    prune_s = result.timings["prune_s"]
    peak = _peak_rss_mb()
    accelerator = (
        {
            "device_name": torch.cuda.get_device_name(),
            "accelerator_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        }
        if device != "cpu"
        else {"device_name": platform.processor() or platform.machine()}
    )
    return {
        **accelerator,
        "model": model_name,
        "method": method,
        "pipeline": pipeline,
        "blocks": model.config.num_hidden_layers,
        "calibration": f"{SAMPLES} x {SEQLEN}",
        "batch_size": BATCH,
        "prune_s": round(prune_s, 2),
        "decoder_forward_s": round(decoder_forward_s, 2),
        "ratio_vs_forward": round(prune_s / decoder_forward_s, 3),
        "achieved_sparsity": round(result.sparsity, 6),
        "model_mb": round(model_bytes / 2**20, 1),
        "runtime_rss_mb": round(runtime_mb, 1),
        "peak_rss_during_prune_mb": round(peak, 1),
        "peak_rss_over_model": round(peak / (model_bytes / 2**20), 3),
        "peak_rss_without_runtime_over_model": round((peak - runtime_mb) / (model_bytes / 2**20), 3),
        "rss_before_prune_mb": round(before_mb, 1),
        "prune_extra_over_model": round((peak - before_mb) / (model_bytes / 2**20), 3),
        **({"_model": model} if keep_model else {}),
    }


def run_streamed(model_name: str, method: str, device: str = "cpu") -> dict:
    """``hfprune prune --stream`` on the saved model: peak RSS of the whole job (reading, pruning, writing).

    There is no in-memory model here, so no plain forward to divide by: compare ``prune_s`` with the
    in-memory row of the same model and method.
    """
    import tempfile

    from transformers import AutoConfig, AutoTokenizer

    import hfprune
    from hfprune.constants import cache_dir
    from hfprune.models.streaming import CheckpointReader
    from hfprune.system import return_large_buffers_promptly

    return_large_buffers_promptly()
    runtime_mb = _current_rss_mb()
    folder = _model_dir(model_name)
    offsets = [entry["data_offsets"] for *_, entry in CheckpointReader(folder).entries.values()]
    model_bytes = sum(end - start for start, end in offsets)
    tokenizer = AutoTokenizer.from_pretrained(folder) if model_name == "tiny" else None
    calib = _calibration(model_name, tokenizer, AutoConfig.from_pretrained(folder).vocab_size)
    _reset_peak_rss()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        started = time.perf_counter()
        result = hfprune.prune_pretrained(
            str(folder),
            Path(tmp) / "out",
            stream=True,
            method=method,
            sparsity=0.5,
            calibration=calib,
            batch_size=BATCH,
            device=device,
        )
        total_s = time.perf_counter() - started
    peak = _peak_rss_mb()
    blocks = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    return {
        "device_name": platform.processor() or platform.machine(),
        "model": model_name,
        "method": method,
        "pipeline": "sequential, streamed",
        "blocks": blocks,
        "calibration": f"{SAMPLES} x {SEQLEN}",
        "batch_size": BATCH,
        "prune_s": round(result.timings["prune_s"], 2),
        "job_s": round(total_s, 2),
        "decoder_forward_s": None,
        "ratio_vs_forward": None,
        "achieved_sparsity": round(result.sparsity, 6),
        "model_mb": round(model_bytes / 2**20, 1),
        "runtime_rss_mb": round(runtime_mb, 1),
        "peak_rss_during_prune_mb": round(peak, 1),
        "peak_rss_over_model": round(peak / (model_bytes / 2**20), 3),
        "peak_rss_without_runtime_over_model": round((peak - runtime_mb) / (model_bytes / 2**20), 3),
    }


def _decoder_forward_seconds(model, calib, device: str) -> float:
    """One plain forward of the decoder stack over the calibration batches, on ``device``.

    On an accelerator the model goes there whole for this reference (it must fit); pruning itself onloads
    one block at a time.
    """
    if device != "cpu":
        model.to(device)
    with torch.no_grad():
        _, first = next(iter(calib.batches(BATCH)))
        model.model(input_ids=first[:1, :64].to(device), use_cache=False)  # warm-up: one-time allocations, kernels
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _, ids in calib.batches(BATCH):
            model.model(input_ids=ids.to(device), use_cache=False)  # the decoder stack: what pruning re-runs
        if device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    if device != "cpu":
        model.to("cpu")
        torch.cuda.empty_cache()
    return seconds


def _markdown(rows: list[dict], machine: dict) -> str:
    head = (
        "| model | blocks | method | pipeline | prune s | forward s | prune / forward | model MB | peak RSS while pruning MB "
        "| peak RSS / model | (peak RSS - runtime) / model | (peak RSS - RSS before prune) / model |\n"
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )

    def cell(value):
        return "—" if value is None or value == "" else value

    body = "".join(
        f"| {r['model']} | {r['blocks']} | {r['method']} | {r['pipeline']} | {r['prune_s']} | {cell(r['decoder_forward_s'])} "
        f"| {cell(r['ratio_vs_forward'])} | {r['model_mb']} | {r['peak_rss_during_prune_mb']} | {r['peak_rss_over_model']} "
        f"| {r['peak_rss_without_runtime_over_model']} | {cell(r.get('prune_extra_over_model'))} |\n"
        for r in rows
    )
    commands = sorted({r.get("command", machine.get("command", "")) for r in rows})
    return (
        f"# hfprune prune on {machine.get('device', 'cpu')} ({machine['cpus']} CPU cores, torch {machine['torch']}, {SAMPLES} x {SEQLEN} tokens, 50% unstructured)\n\n"
        + "".join(f"Command: `{c}`\n\n" for c in commands)
        + "`forward s`: one plain forward of the decoder stack over the same calibration batches. "
        "`peak RSS`: the process's peak resident memory while pruning (the model included), after the forward's "
        "memory was returned to the OS. `runtime`: the RSS of python + torch + transformers before the model is "
        "loaded (about 0.26 GB here; it does not grow with the model). `RSS before prune`: the model loaded and "
        "one forward run, just before pruning starts; what pruning adds on top of it is its own memory. Rows "
        "from several commands (``--merge``) name the command in the JSON.\n\n"
        f"{head}{body}"
    )


def _merged(previous: dict, rows: list[dict]) -> list[dict]:
    """The earlier file's rows (each with the command that made it) with this run's rows put in their place."""
    key = lambda r: (r["model"], r["method"], r["pipeline"])  # noqa: E731
    old_command = previous["machine"].get("command", "")
    merged = [{"command": old_command, **r} for r in previous["results"]]
    fresh = {key(r): r for r in rows}
    merged = [fresh.pop(key(r), r) for r in merged]
    return merged + list(fresh.values())


def _set_batch(batch: int) -> None:
    global BATCH
    BATCH = batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="MODEL:METHOD:PIPELINE,...")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU table (accelerator peak memory)")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "METHOD", "PIPELINE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "prune_cpu"))
    parser.add_argument("--batch-size", type=int, default=BATCH, help="calibration samples per block call")
    parser.add_argument(
        "--merge", action="store_true", help="replace matching rows of the existing --out file, keep the rest"
    )
    args = parser.parse_args()
    _set_batch(args.batch_size)
    if args.one:
        model_name, method, pipeline = args.one
        row = (
            run_streamed(model_name, method, args.device)
            if pipeline == "stream"
            else run_one(*args.one, device=args.device)
        )
        print(json.dumps(row))
        return
    rows = []
    for run in args.runs.split(","):
        model_name, method, pipeline = run.split(":")
        _model_dir(model_name)  # build/train once, outside the timed runs
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                model_name,
                method,
                pipeline,
                "--device",
                args.device,
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"{run} failed:\n{done.stderr[-3000:]}")
        rows.append({**json.loads(done.stdout.strip().splitlines()[-1]), "command": "python " + " ".join(sys.argv)})
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    if args.merge and out.with_suffix(".json").is_file():
        rows = _merged(json.loads(out.with_suffix(".json").read_text()), rows)
    machine = {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "command": "python " + " ".join(sys.argv),
        "device": rows[0]["device_name"] if rows else args.device,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(rows, machine))
    print(_markdown(rows, machine))


if __name__ == "__main__":
    main()
