"""Time and peak memory of ``hfprune.prune`` on CPU, against one plain forward pass over the same tokens.

    python benchmarks/bench_prune.py                      # all models x methods, writes results/prune_cpu.{json,md}
    python benchmarks/bench_prune.py --models tiny --methods wanda

Each (model, method) runs in its own process so peak RSS belongs to that run alone. Models:
- ``tiny``: the project's trained multilingual Llama; calibration = 8 languages x 4 samples from the shared data.
- ``qwen2-0.5b-shape`` (24 blocks) or ``qwen2-0.5b-shape-6blocks``: random init with Qwen2-0.5B's layer shapes
  (hidden 896, MLP 4864, GQA 14/2, vocab 151936); random tokens stand in for text (speed and memory only,
  never quality).
Calibration is 32 samples x 512 tokens in both cases.
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
SAMPLES, SEQLEN, BATCH = 32, 512, 8
METHODS = ("magnitude", "wanda", "sparsegpt")


def _qwen_shape_dir(blocks: int) -> Path:
    """Random-init Qwen2-0.5B-shaped model, saved once (safetensors) so every run loads the same weights."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from hfprune import paths

    folder = paths.cache_dir() / f"bench-qwen2-0.5b-shape-{blocks}blocks"
    if (folder / "config.json").is_file():
        return folder
    config = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=blocks,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
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
    blocks = int(name.rsplit("-", 1)[-1].removesuffix("blocks")) if name.endswith("blocks") else 24
    return _qwen_shape_dir(blocks)


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(model_name: str, method: str) -> dict:
    """Load, time one plain forward, prune, report. Runs in a fresh process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hfprune

    torch.manual_seed(0)
    folder = _model_dir(model_name)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder) if model_name == "tiny" else None
    calib = _calibration(model_name, tokenizer, model.config.vocab_size)
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rss_loaded = _peak_rss_mb()

    with torch.no_grad():
        start = time.perf_counter()
        for _, ids in calib.batches(BATCH):
            model.model(input_ids=ids, use_cache=False)  # the decoder stack: what pruning re-runs
        decoder_forward_s = time.perf_counter() - start
        start = time.perf_counter()
        for _, ids in calib.batches(BATCH):
            model(input_ids=ids, use_cache=False)  # the whole model, head included
        full_forward_s = time.perf_counter() - start

    _reset_peak_rss()  # the forward timings above hold vocabulary-sized logits: not pruning's memory
    result = hfprune.prune(model, method=method, sparsity=0.5, calibration=calib, batch_size=BATCH, device="cpu")
    prune_s = result.timings["prune_s"]
    peak = _peak_rss_mb()
    return {
        "model": model_name,
        "method": method,
        "blocks": model.config.num_hidden_layers,
        "calibration": f"{SAMPLES} x {SEQLEN}",
        "prune_s": round(prune_s, 2),
        "decoder_forward_s": round(decoder_forward_s, 2),
        "full_forward_s": round(full_forward_s, 2),
        "ratio_vs_decoder_forward": round(prune_s / decoder_forward_s, 3),
        "ratio_vs_full_forward": round(prune_s / full_forward_s, 3),
        "achieved_sparsity": round(result.sparsity, 6),
        "model_mb": round(model_bytes / 2**20, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
        "peak_rss_during_prune_mb": round(peak, 1),
        "prune_extra_over_loaded_mb": round(peak - rss_loaded, 1),
    }


def _markdown(rows: list[dict], machine: dict) -> str:
    head = (
        "| model | method | prune s | decoder fwd s | ratio (decoder) | full fwd s | ratio (full) | model MB | RSS after load MB | peak RSS while pruning MB |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r['model']} | {r['method']} | {r['prune_s']} | {r['decoder_forward_s']} | {r['ratio_vs_decoder_forward']} "
        f"| {r['full_forward_s']} | {r['ratio_vs_full_forward']} | {r['model_mb']} | {r['rss_after_load_mb']} "
        f"| {r['peak_rss_during_prune_mb']} |\n"
        for r in rows
    )
    return (
        f"# hfprune prune on CPU ({machine['cpus']} cores, torch {machine['torch']}, {SAMPLES} x {SEQLEN} tokens)\n\n"
        f"Command: `python benchmarks/bench_prune.py`\n\n{head}{body}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,qwen2-0.5b-shape")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "prune_cpu"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    rows = []
    for model_name in args.models.split(","):
        _model_dir(model_name)  # build/train once, outside the timed runs
        for method in args.methods.split(","):
            done = subprocess.run(
                [sys.executable, __file__, "--one", model_name, method], capture_output=True, text=True, check=True
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    machine = {"cpus": os.cpu_count(), "torch": torch.__version__, "platform": platform.platform()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(rows, machine))
    print(_markdown(rows, machine))


if __name__ == "__main__":
    main()
