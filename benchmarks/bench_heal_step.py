"""What a healing step costs on Gemma 3 270M, with the embeddings frozen (the default) and trained.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_heal_step.py            # this CPU
    python benchmarks/bench_heal_step.py --device cuda --tokens 65536               # a GPU, when lent

Runs ``hfprune.healing.heal`` (the real loop: accelerate, AdamW, masks) on the Wanda 50% student of
``bench_heal.py`` against the dense model for ``--tokens`` tokens per setting, alternating the settings for
``--rounds`` rounds, and records the loop's own tokens/s (model loading and quality measurements excluded), the
trained parameters and the memory estimate. Gemma's tied 262,144 x 640 embedding is 168M of its 268M
parameters: freezing it skips its weight gradient and AdamW moments.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "heal_step_gemma3-270m"


def main() -> None:
    from hfprune.healing import HealSettings, heal
    from hfprune.models import ModelSource
    from hfprune.system import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=3072, help="healing tokens per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    student = constants.cache_dir() / "bench-heal" / "wanda-50"
    if not student.is_dir():
        raise SystemExit(f"{student} is missing: run benchmarks/bench_heal.py first (it prunes the student)")
    device = resolve_device(args.device)
    teacher = ModelSource(str(gemma_path()), dtype="float32").load(require_tokenizer=True)
    runs: dict[str, list[dict]] = {"frozen": [], "trained": []}
    for _ in range(args.rounds):
        for name in runs:
            loaded = ModelSource(str(student), dtype="float32").load(require_tokenizer=True)
            settings = HealSettings(
                calibration="en:1,de:1,sw:1",
                tokens=args.tokens,
                seqlen=256,
                batch_size=4,
                device=args.device,
                train_embeddings=name == "trained",
                quality_sentences=0,
            )
            record = heal(
                loaded.model, teacher.model, loaded.tokenizer, settings, teacher_tokenizer=teacher.tokenizer
            ).record
            runs[name].append(
                {
                    "tokens_per_s": round(record["tokens_per_s"], 2),
                    "steps": record["steps"],
                    "trained_parameters": record["memory_estimate"]["trained_parameters"],
                    "gradients_and_adamw_gib": round(record["memory_estimate"]["gradients_and_adamw_gib"], 3),
                }
            )
            print(name, json.dumps(runs[name][-1]), flush=True)
    best = {name: max(run["tokens_per_s"] for run in rows) for name, rows in runs.items()}
    report = {
        "command": shlex.join(["python", *sys.argv]),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "runs": runs,
        "best_tokens_per_s": best,
        "speedup_frozen": round(best["frozen"] / best["trained"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{STEM}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{STEM}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = [
        "# A healing step on Gemma 3 270M: embeddings frozen (default) vs trained",
        "",
        f"Command: `{report['command']}`. Device: {report['device']} ({report['threads']} threads, torch "
        f"{report['torch']}). Wanda 50% student, dense teacher, batch 4 x 256 tokens, the real loop "
        "(`hfprune.healing.heal`), settings alternated; tokens/s of the loop itself.",
        "",
        "| embeddings | tokens/s (each run) | best | trained parameters | gradients + AdamW GiB |",
        "|---|---|---:|---:|---:|",
    ]
    for name, rows in report["runs"].items():
        lines.append(
            f"| {name} | {', '.join(str(r['tokens_per_s']) for r in rows)} | {report['best_tokens_per_s'][name]} | "
            f"{rows[0]['trained_parameters']:,} | {rows[0]['gradients_and_adamw_gib']} |"
        )
    lines += ["", f"Frozen / trained, best runs: {report['speedup_frozen']}x."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
