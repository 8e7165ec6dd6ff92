"""Healing by distillation on a real model: Gemma 3 270M pruned, then healed against the dense model.

    HFPRUNE_DATA_DIR=../shared/data flock /tmp/hfprune-bench.lock python benchmarks/bench_heal.py --tokens 0,16384,49152
    python benchmarks/heal_text.py   # the shared calibration text plus other shared corpora: ~323k en tokens
    HFPRUNE_DATA_DIR=../shared/data python benchmarks/bench_heal.py --merge --tokens 250000 \
        --weights en:2,de:2,sw:1 --calib-source ~/.cache/hfprune/bench-heal/text   # 78 min on 2 CPU cores
    python benchmarks/bench_heal.py --tokens 0,250000,500000,1000000,2000000 --device cuda \
        --calib-source TEXT_DIR   # a GPU, when lent; TEXT_DIR: {en,de,sw}.txt with ~700k tokens each (or --epochs)
    python benchmarks/bench_heal.py --merge --resume ...   # the same command again, after a Ctrl-C or a stop

For each student (``--students``: Wanda 50% unstructured and/or ``--structure width:0.2`` with
``--vocab-scripts``, or ``width:0.1`` with it for the capacity check; all calibrated on en:8,de:8,sw:8) and
each token budget: ``hfprune.healing.heal_pretrained``
(full mode, KD + LM loss, the mask's samples excluded) and FLORES-200 devtest bits per byte (the first
``--sentences`` sentences; tuning never reads devtest) for the kept languages en, de, sw and two not kept (es,
ar), plus the share of the pruning loss recovered per language, the time per 1M tokens on the device and its
name, the sparsity before and after, and a zero-shot task in kept languages (``--task``, default XStoryCloze en,sw,
the first ``--task-limit`` items) for the dense model and every cell. Results are kept as they come (``--merge`` skips done cells); the
models live under hfprune's cache. The curve (``heal_gemma3-270m.png``, rewritten with the table; ``--report-only``
rewrites both from the JSON): the share won back per kept language against tokens, each point marked by its mix.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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
    # the capacity check: half the width removed, the same vocabulary; does en then win back a larger share?
    "width 0.1 + scripts vocabulary": {"structure": "width:0.1", "vocab": True},
}
MIX = "en:8,de:8,sw:8"
#: The healing mix: the kept languages in equal shares of the budget.
EQUAL_WEIGHTS = ",".join(f"{lang}:1" for lang in KEPT)


def main() -> None:
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
    parser.add_argument("--task", default="xstorycloze", help="zero-shot task scored per cell ('' for none)")
    parser.add_argument("--task-langs", default="en,sw", help="its languages (kept ones)")
    parser.add_argument("--task-limit", type=int, default=200, help="items per language")
    parser.add_argument("--train-embeddings", action="store_true", help="heal the embeddings too")
    parser.add_argument(
        "--weights",
        default=EQUAL_WEIGHTS,
        help="the healing mix's relative weights over the kept languages (e.g. en:2,de:2,sw:1 gives the languages "
        "with more text a larger share of the budget)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="passes over the healing text (see hfprune heal)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        help="save a resumable checkpoint every K optimizer steps (a Ctrl-C saves one too)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the first cell still to run from its checkpoint (left by a Ctrl-C or a stopped run); the "
        "heal job refuses one whose settings, models or text differ",
    )
    parser.add_argument(
        "--calib-source",
        default=None,
        help="healing text (folder of {lang}.txt or a datasets id; default hfprune's, ~20k sw tokens: budgets "
        "above ~60k tokens need more text or --epochs)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the markdown and the curve from the results; run nothing"
    )
    args = parser.parse_args()
    path = RESULTS / f"{STEM}.json"
    if args.report_only:
        write_report(json.loads(path.read_text()))
        return
    dense = gemma_path()
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    device = resolve_device(args.device)
    env = [f"HFPRUNE_DATA_DIR={os.environ['HFPRUNE_DATA_DIR']}"] if os.environ.get("HFPRUNE_DATA_DIR") else []
    command = shlex.join([*env, "python", *sys.argv])
    report["commands"] = [*report.get("commands", [report["command"]] if "command" in report else []), command]
    report.pop("command", None)
    if args.task:
        report["task"] = {"name": args.task, "langs": args.task_langs, "limit": args.task_limit}
    report.update(
        device=device_name(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        sentences=args.sentences,
    )
    cells = report.setdefault("cells", {})
    if "dense" not in report:
        report["dense"] = bits_per_byte(dense, [*KEPT, *OTHERS], args.sentences)
        _save(report, path)
    if args.task and "dense_task" not in report:
        report["dense_task"] = zero_shot(dense, args)
        _save(report, path)
    root = constants.cache_dir() / "bench-heal"
    for name in args.students.split(";"):
        student = ensure_student(name, dense, root)
        for tokens in (int(t) for t in args.tokens.split(",")):
            key = f"{name} · {tokens:,} tokens" + (" · embeddings trained" if tokens and args.train_embeddings else "")
            key += f" · {args.epochs} passes" if tokens and args.epochs > 1 else ""
            key += f" · lr {args.lr:g}" if tokens and args.lr is not None else ""
            key += f" · {args.weights}" if tokens and args.weights != EQUAL_WEIGHTS else ""
            key += f" · calib-source {Path(args.calib_source).name}" if tokens and args.calib_source else ""
            if key in cells and tokens == 0 and args.task and "task" not in cells[key]:
                cells[key]["task"] = zero_shot(student, args)
                _save(report, path)
            if key in cells:
                continue
            if tokens == 0:
                cells[key] = {"tokens": 0, "bits_per_byte": bits_per_byte(student, [*KEPT, *OTHERS], args.sentences)}
                if args.task:
                    cells[key]["task"] = zero_shot(student, args)
            else:
                out = root / f"{_slug(name)}-healed"
                settings = HealSettings(
                    calibration=args.weights,
                    tokens=tokens,
                    seqlen=args.seqlen,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    device=args.device,
                    train_embeddings=args.train_embeddings,
                    epochs=args.epochs,
                    calib_source=args.calib_source,
                    checkpoint_every=args.checkpoint_every,
                )
                started = time.perf_counter()
                resume, args.resume = args.resume, False  # only the cell that was stopped has a checkpoint
                result = heal_pretrained(
                    student, str(dense), out, settings, overwrite=not resume, resume=resume, progress=True
                )
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
                    "embeddings": record.get("embeddings"),
                    "tokens_per_s": round(record["tokens_per_s"], 1),
                    # the mask's samples met in the healing text and set aside, per language
                    "dropped_as_mask_samples": record["data"].get("dropped_as_mask_samples"),
                    # resumed: "seconds" is this process's part; "training_s" counts every part
                    **({"resumed": True} if resume else {}),
                }
                if args.task:
                    cells[key]["task"] = zero_shot(out, args)
                shutil.rmtree(out, ignore_errors=True)  # this benchmark's own output
            _save(report, path)
            print(json.dumps({key: cells[key]})[:300], flush=True)
    write_report(report)


def ensure_student(name: str, dense: Path, root: Path) -> Path:
    """The pruned student ``name`` of :data:`STUDENTS` under ``root``, pruned from ``dense`` the first time."""
    import hfprune

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
    return student


def zero_shot(folder: Path, args: argparse.Namespace) -> dict:
    """Accuracy of ``--task`` on the first ``--task-limit`` items of each ``--task-langs`` language (the shared
    data folder, no result cache: each healed copy is new)."""
    from hfprune.evaluation import evaluate_model
    from hfprune.models import ModelSource

    loaded = ModelSource(str(folder), dtype="float32").load(require_tokenizer=True)
    result = evaluate_model(
        loaded.model,
        loaded.tokenizer,
        langs=args.task_langs.split(","),
        tasks=args.task,
        limit=args.task_limit,
        batch_size=8,
        cache=False,
        hub_data=False,
        progress=False,
    )
    return {row.lang: {**row.metrics, "n": row.n} for row in result.results}


def won_back(dense: dict[str, float], pruned: dict[str, float], healed: dict[str, float]) -> dict[str, float]:
    """Per language of ``healed``, the share of the pruning's loss in bits per byte that healing won back."""
    return {lang: round((pruned[lang] - healed[lang]) / (pruned[lang] - dense[lang]), 4) for lang in healed}


def device_name(device: torch.device) -> str:
    """What the results say ran them: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


def _save(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def write_report(report: dict) -> None:
    """The markdown table and the curve's plot beside the JSON."""
    plot_curve(report, RESULTS / f"{STEM}.png")
    (RESULTS / f"{STEM}.md").write_text(markdown(report))


def curve(report: dict, student: str) -> dict[str, list[tuple[int, float, str]]]:
    """Per kept language, (tokens, share won back, the cell's settings) for ``student``'s one-pass cells at the
    default rate with frozen embeddings, by tokens: the curve of quality against the healing budget."""
    dense = report["dense"]
    cells = {key: cell for key, cell in report["cells"].items() if key.split(" · ")[0] == student}
    start = next((cell["bits_per_byte"] for cell in cells.values() if cell["tokens"] == 0), None)
    if start is None:
        return {}
    points: dict[str, list[tuple[int, float, str]]] = {lang: [] for lang in KEPT}
    for key, cell in sorted(cells.items(), key=_order):
        variant = " · ".join(key.split(" · ")[2:])
        if any(word in variant for word in ("passes", "embeddings", "lr ")):
            continue
        won = won_back(dense, start, cell["bits_per_byte"]) if cell["tokens"] else dict.fromkeys(KEPT, 0.0)
        variant = variant.replace("calib-source text", "heal_text.py's text") or "equal weights, hfprune's text"
        for lang in KEPT:
            points[lang].append((cell["tokens"], won[lang], variant if cell["tokens"] else "not healed"))
    return points


def plot_curve(report: dict, path: Path) -> None:
    """One panel per student: the share of the pruning loss won back per kept language against healing tokens,
    each point marked by the cell's settings (the mix weights and the text differ between budgets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hfprune.io import PLOT_METADATA

    curves = {name: points for name in STUDENTS if (points := curve(report, name))}
    figure, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 3.9), squeeze=False)
    variants = sorted({p[2] for points in curves.values() for pts in points.values() for p in pts})
    markers = dict(zip(variants, itertools.cycle("osDx^v<>")))
    targets = {"wanda 50%": 0.3, "width 0.2 + scripts vocabulary": 0.5}
    for axis, name in zip(axes[0], curves):
        for lang, points in curves[name].items():
            xs, ys = [p[0] / 1000 for p in points], [p[1] for p in points]
            (line,) = axis.plot(xs, ys, label=lang)
            for x, y, variant in zip(xs, ys, (p[2] for p in points)):
                axis.plot(x, y, markers[variant], color=line.get_color())
        if name in targets:
            axis.axhline(targets[name], color="grey", linestyle="--", linewidth=1, label="target")
        axis.axhline(1.0, color="black", linewidth=0.6, alpha=0.4)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("healing tokens (thousands)")
        axis.set_ylabel("pruning loss won back (FLORES bits per byte)")
        axis.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    handles = [plt.Line2D([], [], color="grey", marker=m, linestyle="") for m in markers.values()]
    figure.legend(handles, list(markers), fontsize=7, loc="lower center", ncol=len(markers), frameon=False)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110, metadata=PLOT_METADATA, format="png")
    plt.close(figure)


def markdown(report: dict) -> str:
    dense = report["dense"]
    lines = [
        "# Healing Gemma 3 270M by distillation from the dense model (en, de, sw)",
        "",
        "Commands, in turn (`--merge` keeps the cells already measured): "
        + "; ".join(f"`{command}`" for command in report["commands"])
        + f". Device: {report['device']} ({report['threads']} threads, torch "
        f"{report['torch']}). Bits per byte: FLORES-200 devtest, the first {report['sentences']} sentences. "
        "Recovered: the share of the pruning loss in bits per byte that healing won back, per language.",
        "",
        f"![Share of the pruning loss won back against healing tokens]({STEM}.png)",
        "",
        "| student · healing tokens | " + " | ".join(KEPT + OTHERS) + " | recovered (kept) | s per 1M tokens |",
        "|---|" + "---:|" * (len(KEPT) + len(OTHERS)) + "---|---:|",
    ]
    unhealed = {key.split(" · ")[0]: cell for key, cell in report["cells"].items() if cell["tokens"] == 0}
    cells = sorted(report["cells"].items(), key=_order)
    for key, cell in cells:
        bpb = cell["bits_per_byte"]
        start = unhealed.get(key.split(" · ")[0], {}).get("bits_per_byte", {})
        lost = [lang for lang in KEPT if start.get(lang, 0) > dense[lang]] if cell["tokens"] else []
        won = won_back(dense, start, {lang: bpb[lang] for lang in lost})
        recovered = [f"{lang} {share:.0%}" for lang, share in won.items()]
        lines.append(
            f"| {key} | "
            + " | ".join(f"{bpb[lang]:.4f} ({bpb[lang] / dense[lang] - 1:+.1%})" for lang in KEPT + OTHERS)
            + f" | {', '.join(recovered)} | {cell.get('seconds_per_million_tokens', '')} |"
        )
    lines.append("| dense | " + " | ".join(f"{dense[lang]:.4f}" for lang in KEPT + OTHERS) + " | | |")
    task = report.get("task")
    if task and report.get("dense_task"):
        langs = list(report["dense_task"])
        lines += [
            "",
            f"Zero-shot {task['name']} accuracy ± standard error (the first {task['limit']} items per language, "
            "hfprune.evaluation.evaluate_model):",
            "",
            "| model | " + " | ".join(langs) + " |",
            "|---|" + "---:|" * len(langs),
            "| dense | " + " | ".join(_accuracy(report["dense_task"][lang]) for lang in langs) + " |",
        ]
        for key, cell in cells:
            if "task" in cell:
                lines.append(f"| {key} | " + " | ".join(_accuracy(cell["task"][lang]) for lang in langs) + " |")
    if report.get("note"):
        lines += ["", f"Note: {report['note']}"]
    return "\n".join(lines) + "\n"


def _order(item: tuple[str, dict]) -> tuple[int, int, str]:
    """Each student's cells together, by healing tokens."""
    key, cell = item
    name = key.split(" · ")[0]
    return (list(STUDENTS).index(name) if name in STUDENTS else len(STUDENTS), cell["tokens"], key)


def _accuracy(metrics: dict) -> str:
    """Accuracy with its standard error: differences within about two of them are noise at this item count."""
    stderr = metrics.get("acc_stderr")
    return f"{metrics['acc']:.3f}" + (f" ± {stderr:.3f}" if stderr is not None else "")


if __name__ == "__main__":
    main()
