"""What an OpenVINO export gives a user of a pruned model on this CPU: size, decode speed, quality per language.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_openvino.py      # results/openvino_<model>.{json,md}

Every model is made and exported as a user would (``python -m hfprune prune`` / ``hfprune export``, one process
each): the dense model, Wanda 50% and Wanda 2:4 (calibrated on en:8,de:8,sw:8), magnitude 60% and 70% (the sparsity
table), and the full recipe (``--structure width:0.2 --trim-vocab --vocab-scripts``) — all exported to int8
(symmetric for the sparse ones: their zeros stay exact; the dense default is asymmetric, and the dense model is
also exported symmetric, so that sparsity's own effect can be told from symmetry's). Speed: PyTorch fp32 and
every export in one process, timed in turns (``hfprune.models.speed.compare_generate_speeds``: greedy ``generate``
of ``--new-tokens`` tokens after a 64-token English prompt at batch 1, the same threads for both runtimes, best
round); each sparse export twice, with its runtime file's sparse decompression and with it off. Quality: each
export's own verification (bits per byte of the export and of its PyTorch model on the first ``--sentences``
FLORES devtest sentences of en, de, sw).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hfprune.evaluation.perplexity import load_flores
from hfprune.export.runtime import SPARSE_PROPERTY, load_openvino, ov_config
from hfprune.models import load_model
from hfprune.models.speed import compare_generate_speeds, machine

RESULTS = Path(__file__).resolve().parent / "results"
LANGS = ("en", "de", "sw")
MIX = "en:8,de:8,sw:8"
PROMPT = 64
#: name -> the prune arguments (None: the dense model itself)
MODELS: dict[str, list[str] | None] = {
    "dense": None,
    "dense, symmetric int8": None,
    "wanda 50%": ["--method", "wanda", "--sparsity", "0.5", "--calib", MIX],
    "wanda 2:4": ["--method", "wanda", "--sparsity", "0.5", "--structure", "2:4", "--calib", MIX],
    "magnitude 60%": ["--method", "magnitude", "--sparsity", "0.6"],
    "magnitude 70%": ["--method", "magnitude", "--sparsity", "0.7"],
    "recipe: width 20% + vocab (scripts)": [
        "--structure",
        "width:0.2",
        "--lang-agg",
        "max",
        "--trim-vocab",
        "--vocab-scripts",
        "--vocab-no-speed",
        "--calib",
        MIX,
    ],
}


def hfprune(*args: str) -> str:
    """One hfprune command in its own process, as a user runs it; its stdout."""
    done = subprocess.run([sys.executable, "-m", "hfprune", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"hfprune {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def gemma_path() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gemma3_270m import gemma_path as path

    return path()


def build(
    dense: Path, work: Path, name: str, prune_args: list[str] | None, sentences: int, reuse: bool
) -> dict[str, Any]:
    """Prune (unless dense or already there) and export one model (``reuse``: an export already there is kept);
    the export's record and the timings."""
    stem = name.replace(",", "").replace(" ", "_").replace(":", "").replace("%", "")
    folder = dense if prune_args is None else work / stem
    timings: dict[str, float] = {}
    if prune_args is not None and not (folder / "hfprune.json").is_file():
        started = time.perf_counter()
        hfprune("prune", str(dense), *prune_args, "--seed", "0", "--no-speed", "--out", str(folder), "--overwrite")
        timings["prune_s"] = time.perf_counter() - started
    out = work / "exports" / stem
    if reuse and (out / "hfprune_export.json").is_file():
        record = json.loads((out / "hfprune_export.json").read_text())
        return {"folder": str(folder), "export": str(out), "record": record}
    started = time.perf_counter()
    record = json.loads(
        hfprune(
            "export",
            str(folder),
            "--to",
            "openvino",
            "--weights",
            "int8",
            "--out",
            str(out),
            "--overwrite",
            "--verify-langs",
            ",".join(LANGS),
            "--verify-sentences",
            str(sentences),
            "--no-speed",
            "--json",
            *(["--sym"] if "symmetric" in name else []),
        )
    )
    timings["export_s"] = time.perf_counter() - started
    return {"folder": str(folder), "export": str(out), "record": record, **timings}


def speeds(built: dict[str, dict[str, Any]], rounds: int, new_tokens: int) -> dict[str, dict[str, Any]]:
    """PyTorch fp32 (dense and recipe) and every export, in turns; sparse exports also with decompression off."""
    text = " ".join(load_flores("en").splitlines()[:20])
    threads = torch.get_num_threads()
    models: dict[str, tuple[Any, torch.Tensor]] = {}
    for name in ("dense", "recipe: width 20% + vocab (scripts)"):
        loaded = load_model(built[name]["folder"])
        models[f"PyTorch fp32: {name}"] = (
            loaded.model.eval(),
            loaded.tokenizer(text, return_tensors="pt").input_ids[:, :PROMPT],
        )
    for name, entry in built.items():
        loaded = load_model(entry["folder"])
        prompt = loaded.tokenizer(text, return_tensors="pt").input_ids[:, :PROMPT]
        models[f"OpenVINO int8: {name}"] = (load_openvino(entry["export"], threads=threads), prompt)
        if SPARSE_PROPERTY in ov_config(entry["export"]):
            from optimum.intel import OVModelForCausalLM

            off = OVModelForCausalLM.from_pretrained(entry["export"], ov_config={"INFERENCE_NUM_THREADS": threads})
            models[f"OpenVINO int8: {name}, sparse decompression off"] = (off, prompt)
    return compare_generate_speeds(models, rounds=rounds, new_tokens=new_tokens)


def markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        f"# OpenVINO export of {setup['model']} on this CPU",
        "",
        f"`{setup['command']}`; {setup['machine']}, {setup['threads']} threads for PyTorch and OpenVINO alike, "
        f"{setup['versions']}. Speed: greedy decode of {setup['new_tokens']} tokens after a {PROMPT}-token prompt, "
        f"batch 1, models timed in turns, best of {setup['rounds']} rounds. Quality: bits per byte on the first "
        f"{setup['sentences']} FLORES devtest sentences per language, from each export's own verification.",
        "",
        "| model | runtime | file MB | x dense fp32 | decode tok/s | every round | x PyTorch fp32 dense | x dense int8 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    speed = report["speed"]
    dense_fp32 = speed["PyTorch fp32: dense"]["decode_tokens_per_s"]
    dense_int8 = speed["OpenVINO int8: dense"]["decode_tokens_per_s"]
    dense_bytes = report["models"]["dense"]["record"]["sizes"]["safetensors_bytes"]
    for key, row in speed.items():
        runtime, name = key.split(": ", 1)
        entry = report["models"][name.split(", sparse")[0]]
        sizes = entry["record"]["sizes"]
        size = sizes["safetensors_bytes"] if runtime.startswith("PyTorch") else sizes["ir_bytes"]
        tps = row["decode_tokens_per_s"]
        lines.append(
            f"| {name} | {runtime} | {size / 1e6:,.0f} | {size / dense_bytes:.2f} | {tps:.1f} | "
            + " / ".join(f"{r['decode_tokens_per_s']:.1f}" for r in row["rounds"])
            + " | "
            f"{tps / dense_fp32:.2f} | {tps / dense_int8:.2f} |"
        )
    lines += ["", "Bits per byte (PyTorch fp32 dense on the same sentences first):", ""]
    lines.append(
        "| model | zeros in int8 blocks | sparse rate | matrices packed | "
        + " | ".join(LANGS)
        + " | mean change vs dense |"
    )
    lines.append("|---|---:|---:|---:|" + "---:|" * (len(LANGS) + 1))
    dense_bpb = report["models"]["dense"]["record"]["verification"]["languages"]
    lines.append(
        "| dense, PyTorch fp32 | | | | "
        + " | ".join(f"{dense_bpb[lang]['bits_per_byte_pytorch']:.3f}" for lang in LANGS)
        + " | |"
    )
    for name, entry in report["models"].items():
        record = entry["record"]
        langs = record["verification"]["languages"]
        change = sum(
            langs[lang]["bits_per_byte_export"] / dense_bpb[lang]["bits_per_byte_pytorch"] - 1 for lang in LANGS
        ) / len(LANGS)
        zeros = record["ir"]["block_zero_share"]
        eligible = record["ir"]["sparse_eligible"]
        lines.append(
            f"| {name if 'int8' in name else name + ', int8'} | {zeros:.1%} | {eligible['rate'] or 'off'} | {eligible['matrices']} | "
            + " | ".join(f"{langs[lang]['bits_per_byte_export']:.3f}" for lang in LANGS)
            + f" | {change:+.1%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--work", default=str(Path.home() / ".cache/hfprune/bench-openvino"))
    parser.add_argument("--only", default=None, help="comma-separated model names (default: all)")
    parser.add_argument("--reuse-exports", action="store_true", help="keep exports already in --work (speed only)")
    args = parser.parse_args()
    dense = gemma_path()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    chosen = {n: a for n, a in MODELS.items() if args.only is None or n in args.only.split(",") or n == "dense"}
    built = {}
    for name, prune_args in chosen.items():
        built[name] = build(dense, work, name, prune_args, args.sentences, args.reuse_exports)
        print(
            f"{name}: built {built[name].get('prune_s', 0):.0f} s, exported {built[name].get('export_s', 0):.0f} s",
            file=sys.stderr,
        )
    from hfprune.models.openvino_compat import installed_versions

    versions = installed_versions()
    report = {
        "setup": {
            "model": "gemma3-270m",
            "command": "python benchmarks/bench_openvino.py " + " ".join(sys.argv[1:]),
            "machine": machine(),
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items() if v) + f", torch {torch.__version__}",
            "sentences": args.sentences,
            "rounds": args.rounds,
            "new_tokens": args.new_tokens,
        },
        "models": built,
    }
    report["speed"] = speeds(built, args.rounds, args.new_tokens)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / "openvino_gemma3-270m"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
