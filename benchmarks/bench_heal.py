"""Healing by distillation on a real model: Gemma 3 270M pruned, then healed against the dense model.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_heal.py --tokens 0,16384,65536   # this CPU
    python benchmarks/bench_heal.py --tokens 0,250000,500000,1000000,2000000 --device cuda  # a GPU, when lent

For each student (``--students``: Wanda 50% unstructured and/or ``--structure width:0.2`` with
``--vocab-scripts``, both calibrated on en:8,de:8,sw:8) and each token budget: ``hfprune.healing.heal_pretrained``
(full mode, KD + LM loss, the mask's samples excluded) and FLORES-200 devtest bits per byte (the first
``--sentences`` sentences; tuning never reads devtest) for the kept languages en, de, sw and two not kept (es,
ar), plus the share of the pruning loss recovered per language, the time per 1M tokens on the device and its
name, and the sparsity before and after. Results are kept as they come (``--merge`` skips done cells); the
models live under hfprune's cache.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vocab import bits_per_byte  # noqa: E402
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "heal_gemma3-270m"
KEPT, OTHERS = ("en", "de", "sw"), ("es", "ar")
STUDENTS = {
    "wanda 50%": {"method": "wanda", "sparsity": 0.5},
    "width 0.2 + scripts vocabulary": {"structure": "width:0.2", "vocab": True},
}
MIX = "en:8,de:8,sw:8"


def main() -> None:
    import hfprune
    from hfprune.healing import HealSettings, heal_pretrained
    from hfprune.system import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="0,16384,65536", help="comma-separated healing budgets")
    parser.add_argument("--students", default=";".join(STUDENTS), help="';'-separated students")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--merge", action="store_true")
    args = parser.parse_args()
    dense = gemma_path()
    path = RESULTS / f"{STEM}.json"
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    device = resolve_device(args.device)
    report.update(
        command=shlex.join(["python", *sys.argv]),
        device=torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}",
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        sentences=args.sentences,
    )
    cells = report.setdefault("cells", {})
    if "dense" not in report:
        report["dense"] = bits_per_byte(dense, [*KEPT, *OTHERS], args.sentences)
        _save(report, path)
    root = constants.cache_dir() / "bench-heal"
    for name in args.students.split(";"):
        spec = STUDENTS[name]
        student = root / _slug(name)
        if not (student / constants.METADATA_FILE).is_file():
            vocab = hfprune.VocabSettings(scripts=True, measure_speed=False) if spec.get("vocab") else None
            settings = hfprune.PruneSettings(
                method=spec.get("method", "wanda"),
                sparsity=spec.get("sparsity"),
                structure=spec.get("structure", "unstructured"),
                calibration=MIX,
                seqlen=256,
                vocab=vocab,
            )
            hfprune.prune_pretrained(str(dense), student, settings, overwrite=True, progress=True)
        for tokens in (int(t) for t in args.tokens.split(",")):
            key = f"{name} · {tokens:,} tokens"
            if key in cells:
                continue
            if tokens == 0:
                cells[key] = {"tokens": 0, "bits_per_byte": bits_per_byte(student, [*KEPT, *OTHERS], args.sentences)}
            else:
                out = root / f"{_slug(name)}-healed"
                settings = HealSettings(
                    calibration=",".join(f"{lang}:1" for lang in KEPT),
                    tokens=tokens,
                    seqlen=args.seqlen,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    device=args.device,
                )
                started = time.perf_counter()
                result = heal_pretrained(student, str(dense), out, settings, overwrite=True, progress=True)
                seconds = time.perf_counter() - started
                record = result.record
                cells[key] = {
                    "tokens": tokens,
                    "seconds": round(seconds, 1),
                    "training_s": round(record["time_s"], 1),
                    "seconds_per_million_tokens": round(record["time_s"] / tokens * 1e6, 1),
                    "loss_start": record.get("loss_start"),
                    "loss_end": record.get("loss_end"),
                    "sparsity_before": record.get("achieved_sparsity_before"),
                    "sparsity_after": record["achieved_sparsity"],
                    "bits_per_byte": bits_per_byte(out, [*KEPT, *OTHERS], args.sentences),
                }
                shutil.rmtree(out, ignore_errors=True)  # this benchmark's own output
            _save(report, path)
            print(json.dumps({key: cells[key]})[:300], flush=True)
    (RESULTS / f"{STEM}.md").write_text(markdown(report))


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


def _save(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def markdown(report: dict) -> str:
    dense = report["dense"]
    lines = [
        "# Healing Gemma 3 270M by distillation from the dense model (en, de, sw)",
        "",
        f"Command: `{report['command']}`. Device: {report['device']} ({report['threads']} threads, torch "
        f"{report['torch']}). Bits per byte: FLORES-200 devtest, the first {report['sentences']} sentences. "
        "Recovered: the share of the pruning loss in bits per byte that healing won back, per language.",
        "",
        "| student · healing tokens | " + " | ".join(KEPT + OTHERS) + " | recovered (kept) | s per 1M tokens |",
        "|---|" + "---:|" * (len(KEPT) + len(OTHERS)) + "---|---:|",
    ]
    unhealed = {key.split(" · ")[0]: cell for key, cell in report["cells"].items() if cell["tokens"] == 0}
    for key, cell in report["cells"].items():
        bpb = cell["bits_per_byte"]
        start = unhealed.get(key.split(" · ")[0], {}).get("bits_per_byte", {})
        recovered = []
        for lang in KEPT:
            lost = start.get(lang, 0) - dense[lang]
            if cell["tokens"] and lost > 0:
                recovered.append(f"{lang} {(start[lang] - bpb[lang]) / lost:.0%}")
        lines.append(
            f"| {key} | "
            + " | ".join(f"{bpb[lang]:.4f} ({bpb[lang] / dense[lang] - 1:+.1%})" for lang in KEPT + OTHERS)
            + f" | {', '.join(recovered)} | {cell.get('seconds_per_million_tokens', '')} |"
        )
    lines.append("| dense | " + " | ".join(f"{dense[lang]:.4f}" for lang in KEPT + OTHERS) + " | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
