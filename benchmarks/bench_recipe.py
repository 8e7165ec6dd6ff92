"""The whole recipe for a user of two languages: trim the vocabulary to them and remove 20% of the MLP width.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_recipe.py --model gemma3-270m   # results/recipe_<model>.*

What a user types, run as they would run it (``python -m hfprune prune`` and ``hfprune eval``, one process each),
for ``en,sw``:

* ``--structure width:0.2 --lang-agg max --calib en:C,sw:C`` alone;
* the same with ``--trim-vocab --vocab-scripts`` (every token of the Latin script stays: text in it tokenizes as
  before);
* the same with ``--trim-vocab`` (the tokens the calibration text uses: far smaller, and tokenization changes).

Size: parameters and safetensors bytes. Speed: the dense model and every variant side by side in one process,
in interleaved rounds (one greedy ``generate`` of ``--new-tokens`` tokens after a 128-token prompt at batch 1, the
same English text tokenized by each model's own tokenizer), best round. Quality: FLORES devtest bits per byte (the
figure that compares across tokenizers) of the first ``--sentences`` sentences of en and sw, and of de and zh (not
kept), from ``hfprune eval --baseline``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hfprune.evaluation.perplexity import load_flores
from hfprune.models import load_model
from hfprune.models.speed import compare_speeds
from hfprune.tiny_model import tiny_model_path

RESULTS = Path(__file__).resolve().parent / "results"
KEPT = ("en", "sw")
NOT_KEPT = ("de", "zh")
PROMPT = 128
VARIANTS = {
    "width:0.2": [],
    "width:0.2 + vocab (scripts)": ["--trim-vocab", "--vocab-scripts"],
    "width:0.2 + vocab (frequency)": ["--trim-vocab"],
}


def _gemma_path() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gemma3_270m import gemma_path

    return gemma_path()


#: name -> (folder, calibration samples per language)
MODELS = {"gemma3-270m": (_gemma_path, 8), "tiny": (tiny_model_path, 16)}


def hfprune(*args: str) -> str:
    """One hfprune command in its own process, as a user runs it; its stdout."""
    done = subprocess.run([sys.executable, "-m", "hfprune", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"hfprune {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def prune(model: Path, out: Path, samples: int, extra: list[str]) -> float:
    started = time.perf_counter()
    hfprune(
        "prune",
        str(model),
        "--structure",
        "width:0.2",
        "--lang-agg",
        "max",
        "--calib",
        ",".join(f"{lang}:{samples}" for lang in KEPT),
        "--seed",
        "0",
        "--no-speed",
        "--out",
        str(out),
        *extra,
        *(["--vocab-no-speed"] if extra else []),
    )
    return time.perf_counter() - started


def bits_per_byte(model: Path, dense: Path, sentences: int) -> dict[str, dict[str, float]]:
    """Per language, the dense and this model's FLORES bits per byte (each with its own tokenizer)."""
    payload = json.loads(
        hfprune(
            "eval",
            str(model),
            "--baseline",
            str(dense),
            "--langs",
            ",".join(KEPT + NOT_KEPT),
            "--tasks",
            "ppl",
            "--limit",
            str(sentences),
            "--no-cache",
            "--json",
        )
    )
    rows = [row for row in payload["changes"] if row["metric"] == "bits_per_byte"]
    return {row["lang"]: {"dense": row["dense"], "pruned": row["pruned"]} for row in rows}


def sizes_and_speeds(folders: dict[str, Path], rounds: int, new_tokens: int) -> dict[str, dict[str, Any]]:
    """Parameters and safetensors bytes of every model, and their speed side by side, in interleaved rounds; the
    best round of each (a shared machine only slows)."""
    text = " ".join(load_flores("en").splitlines()[:20])
    models = {}
    sizes = {}
    for name, folder in folders.items():
        loaded = load_model(str(folder))
        prompt = loaded.tokenizer(text, return_tensors="pt").input_ids[:, :PROMPT]
        models[name] = (loaded.model, prompt)
        sizes[name] = {
            "params": sum(p.numel() for p in loaded.model.parameters()),
            "safetensors_bytes": sum(path.stat().st_size for path in folder.glob("*.safetensors")),
        }
    best = compare_speeds(models, rounds=rounds, new_tokens=new_tokens)
    return {name: {**sizes[name], "speed": best[name]} for name in folders}


def markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    dense = report["models"]["dense"]
    lines = [
        f"# A two-language recipe on {setup['model']}: trim the vocabulary to en, sw and remove 20% of the MLP width",
        "",
        f"Command: `{setup['command']}`",
        "",
        f"Machine: 2 CPU cores **shared with other engineers' jobs**, torch {setup['torch']} ({setup['threads']} "
        f"threads), fp32. Pruning: `hfprune prune --structure width:0.2 --lang-agg max --calib {setup['mix']} "
        "--seed 0` (+ the vocabulary options of the row). Quality: `hfprune eval --baseline` on the first "
        f"{setup['sentences']} FLORES devtest sentences, bits per byte (comparable across tokenizers; lower is "
        "better). Speed: every model side by side in one process, "
        f"{setup['rounds']} interleaved rounds of a {PROMPT}-token English prompt and {setup['new_tokens']} greedy "
        "tokens at batch 1, best round.",
        "",
        "| model | params | x dense | safetensors MB | prefill tok/s | decode tok/s | decode x dense | "
        + " | ".join(f"{lang} bpb" for lang in KEPT + NOT_KEPT)
        + " | kept langs bpb change |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * (len(KEPT + NOT_KEPT) + 1),
    ]
    for name, row in report["models"].items():
        bpb = row.get("bits_per_byte") or {}
        values = [bpb.get(lang, {}).get("pruned" if name != "dense" else "dense") for lang in KEPT + NOT_KEPT]
        kept_change = row.get("kept_bpb_change")
        lines.append(
            f"| {name} | {row['params']:,} | {row['params'] / dense['params']:.3f} | "
            f"{row['safetensors_bytes'] / 1e6:.0f} | {row['speed']['prefill_tokens_per_s']:.0f} | "
            f"{row['speed']['decode_tokens_per_s']:.1f} | "
            f"{row['speed']['decode_tokens_per_s'] / dense['speed']['decode_tokens_per_s']:.2f} | "
            + " | ".join(f"{v:.4f}" if v is not None else "" for v in values)
            + f" | {'' if kept_change is None else f'{kept_change:+.1%}'} |"
        )
    lines += [
        "",
        "`kept langs bpb change`: mean over en and sw of the relative change in bits per byte against the dense model.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3-270m", choices=list(MODELS))
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    path_of, samples = MODELS[args.model]
    dense = Path(path_of())
    report: dict[str, Any] = {
        "setup": {
            "model": args.model,
            "command": "python benchmarks/bench_recipe.py " + " ".join(sys.argv[1:]),
            "mix": ",".join(f"{lang}:{samples}" for lang in KEPT),
            "sentences": args.sentences,
            "rounds": args.rounds,
            "new_tokens": args.new_tokens,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
        },
        "models": {"dense": {}},
    }
    with tempfile.TemporaryDirectory(prefix="hfprune-recipe-") as scratch:
        folders = {"dense": dense}
        for name, extra in VARIANTS.items():
            out = Path(scratch) / name.replace(" ", "_").replace(":", "").replace("(", "").replace(")", "")
            seconds = prune(dense, out, samples, extra)
            folders[name] = out
            report["models"][name] = {"prune_s": round(seconds, 1)}
            print(f"{name}: pruned in {seconds:.0f} s", file=sys.stderr)
        for name, measured in sizes_and_speeds(folders, args.rounds, args.new_tokens).items():
            report["models"][name].update(measured)
        for name, folder in folders.items():
            if name == "dense":
                continue
            bpb = bits_per_byte(folder, dense, args.sentences)
            report["models"][name]["bits_per_byte"] = bpb
            report["models"][name]["kept_bpb_change"] = sum(
                bpb[lang]["pruned"] / bpb[lang]["dense"] - 1 for lang in KEPT
            ) / len(KEPT)
            report["models"]["dense"]["bits_per_byte"] = bpb
    stem = RESULTS / f"recipe_{args.model}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
