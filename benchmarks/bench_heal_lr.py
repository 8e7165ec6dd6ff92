"""Which learning rate heals best per token: a sweep on one student and one budget, chosen on held-out text that
the reported numbers never use.

    HFPRUNE_DATA_DIR=../shared/data python benchmarks/bench_heal_lr.py --lrs 2e-5,1e-4,3e-4,1e-3 --tokens 16384

The student is one of ``bench_heal.STUDENTS`` (default the width one, whose target was missed at the default
rate), healed exactly as ``bench_heal.py`` heals it (full mode, KD + LM, en:1,de:1,sw:1, the mask's samples
excluded) at each ``--lrs`` rate. Each healed copy is scored in bits per byte on FLORES-200 devtest sentences
``--select`` (default 500:600), disjoint from the first 100 that ``bench_heal.py`` reports and from the 16 the
heal record reads, so picking a rate here does not tune on the reported text. The chosen rate is the one whose
worst kept language won back the most (the target is "every kept language"). Results:
``results/heal_lr_gemma3-270m.{json,md}``; ``--merge`` keeps rates already measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heal import (  # noqa: E402
    EQUAL_WEIGHTS,
    KEPT,
    RESULTS,
    STUDENTS,
    _save,
    _slug,
    device_name,
    ensure_student,
    won_back,
)
from bench_vocab import bits_per_byte  # noqa: E402
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402

STEM = "heal_lr_gemma3-270m"


def main() -> None:
    from hfprune.healing import HealSettings, heal_pretrained
    from hfprune.system import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="width 0.2 + scripts vocabulary", choices=list(STUDENTS))
    parser.add_argument("--lrs", default="2e-5,1e-4,3e-4,1e-3", help="comma-separated AdamW learning rates")
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--select", default="500:600", help="FLORES devtest lines scored, start:stop")
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--merge", action="store_true")
    args = parser.parse_args()
    start, stop = (int(x) for x in args.select.split(":"))
    texts = {lang: _lines(lang, start, stop) for lang in KEPT}
    path = RESULTS / f"{STEM}.json"
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    device = resolve_device(args.device)
    env = [f"HFPRUNE_DATA_DIR={os.environ['HFPRUNE_DATA_DIR']}"] if os.environ.get("HFPRUNE_DATA_DIR") else []
    report["commands"] = [*report.get("commands", []), shlex.join([*env, "python", *sys.argv])]
    report.update(
        student=args.student,
        tokens=args.tokens,
        select=args.select,
        device=device_name(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
    )
    dense = gemma_path()
    root = constants.cache_dir() / "bench-heal"
    student = ensure_student(args.student, dense, root)
    if "dense" not in report:
        report["dense"] = bits_per_byte(dense, KEPT, None, texts)
    if "pruned" not in report:
        report["pruned"] = bits_per_byte(student, KEPT, None, texts)
    _save(report, path)
    cells = report.setdefault("cells", {})
    for lr in (float(x) for x in args.lrs.split(",")):
        key = f"{lr:g}"
        if key in cells:
            continue
        out = root / f"{_slug(args.student)}-lr"
        settings = HealSettings(
            calibration=EQUAL_WEIGHTS,
            tokens=args.tokens,
            seqlen=args.seqlen,
            batch_size=args.batch_size,
            lr=lr,
            device=args.device,
            quality_sentences=0,
        )
        started = time.perf_counter()
        record = heal_pretrained(student, str(dense), out, settings, overwrite=True, progress=True).record
        bpb = bits_per_byte(out, KEPT, None, texts)
        cells[key] = {
            "lr": lr,
            "seconds": round(time.perf_counter() - started, 1),
            "seconds_per_million_tokens": round(record["time_s"] / args.tokens * 1e6, 1),
            "loss_start": record.get("loss_start"),
            "loss_end": record.get("loss_end"),
            "sparsity_before": record.get("achieved_sparsity_before"),
            "sparsity_after": record["achieved_sparsity"],
            "bits_per_byte": bpb,
            "won_back": won_back(report["dense"], report["pruned"], bpb),
        }
        shutil.rmtree(out, ignore_errors=True)  # this benchmark's own output
        _save(report, path)
        print(json.dumps({key: cells[key]})[:300], flush=True)
    report["chosen_lr"] = max(cells.values(), key=lambda cell: min(cell["won_back"].values()))["lr"]
    _save(report, path)
    (RESULTS / f"{STEM}.md").write_text(markdown(report))


def _lines(lang: str, start: int, stop: int) -> str:
    from hfprune.evaluation.perplexity import load_flores

    lines = load_flores(lang).splitlines()[start:stop]
    if len(lines) < stop - start:
        raise SystemExit(f"FLORES devtest {lang} has {len(lines) + start} lines; --select {start}:{stop} is too far")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    dense, pruned = report["dense"], report["pruned"]
    lines = [
        f"# Healing learning rate: {report['student']}, {report['tokens']:,} tokens (Gemma 3 270M)",
        "",
        "Commands: "
        + "; ".join(f"`{command}`" for command in report["commands"])
        + f". Device: {report['device']} ({report['threads']} threads, torch {report['torch']}). Bits per byte on "
        f"FLORES-200 devtest lines {report['select']} (the selection text: disjoint from the first 100 lines "
        "that `bench_heal.py` reports). Chosen: the rate whose worst kept language won back the most.",
        "",
        "| lr | " + " | ".join(KEPT) + " | won back | worst | loss start → end | s per 1M tokens |",
        "|---:|" + "---:|" * len(KEPT) + "---|---:|---|---:|",
        "| dense | " + " | ".join(f"{dense[lang]:.4f}" for lang in KEPT) + " | | | | |",
        "| not healed | " + " | ".join(f"{pruned[lang]:.4f}" for lang in KEPT) + " | | | | |",
    ]
    for cell in sorted(report["cells"].values(), key=lambda cell: cell["lr"]):
        bpb, won = cell["bits_per_byte"], cell["won_back"]
        chosen = " (chosen)" if cell["lr"] == report.get("chosen_lr") else ""
        lines.append(
            f"| {cell['lr']:g}{chosen} | "
            + " | ".join(f"{bpb[lang]:.4f}" for lang in KEPT)
            + " | "
            + ", ".join(f"{lang} {won[lang]:.0%}" for lang in KEPT)
            + f" | {min(won.values()):.0%} | {_loss(cell)} | {cell['seconds_per_million_tokens']} |"
        )
    return "\n".join(lines) + "\n"


def _loss(cell: dict) -> str:
    """The training loss (KD + LM) of the first and the last step."""
    start, end = (cell.get(key) or {} for key in ("loss_start", "loss_end"))
    return f"{start['loss']:.3f} → {end['loss']:.3f}" if "loss" in start and "loss" in end else ""


if __name__ == "__main__":
    main()
