"""Structured pruning (width, depth) with per-language importance: size, CPU speed and FLORES quality per language.

    python benchmarks/bench_structured.py --model tiny
    python benchmarks/bench_structured.py --model gemma3-270m --sentences 40 --resume
                                                   # results/structured_<model>.{json,md}

The run holds ``/tmp/hfprune-bench.lock`` (``flock``) in turns of about ``--lock-minutes``, never giving it back
during a cell or the speed part, rather than for its whole length (hours on Gemma): other engineers' benchmarks
run between turns, never during one. ``--resume`` keeps the cells an interrupted run finished.

Grid: MLP width 10/20/30% and depth 2/4 blocks (the tiny model has 2 blocks: depth 1 only), each with ``--lang-agg``
pooled, max, mean and min, the least-squares refit on and off (width only: removed blocks need none), on an
8-language calibration mix; then the same shapes with English-only calibration of the same total size, where every
aggregation ranks alike (one language; tested), so only pooled runs.

Quality: FLORES devtest perplexity and bits per byte per language (the first ``--sentences`` sentences, 256-token
windows), mean and worst. Speed: every shape and the dense model side by side in one process, in interleaved
rounds (dense, width 10%, ..., depth 4, then again), each round one prefill forward over a 128-token prompt and one
plain greedy ``generate`` of ``--new-tokens`` tokens at batch 1; the table gives the best round (a shared machine
only ever slows a run down) and the JSON every round. The blocks' time per decoded token is timed by hooks on the
first block's start and the last block's end (``hfprune.models.speed``).

Targets (from the issue): when the blocks lose X% of their parameters, the blocks' decode time per token falls by
at least 0.8 X%; a language-aware aggregation beats pooled on the worst language at every width; the refit lowers
mean perplexity at every width. Misses are reported as misses.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import hfprune
from hfprune.analysis.flores_eval import flores_perplexities, summarise
from hfprune.calibration import build_calibration, open_source
from hfprune.evaluation.perplexity import load_flores
from hfprune.models import load_model
from hfprune.models.speed import compare_speeds
from hfprune.tiny_model import LANGUAGES, tiny_model_path

RESULTS = Path(__file__).resolve().parent / "results"
LOCK = "/tmp/hfprune-bench.lock"
SEQLEN, CONTEXT, PROMPT = 256, 256, 128
AGGS = ("pooled", "max", "mean", "min")


def _gemma_path() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gemma3_270m import gemma_path

    return gemma_path()


#: name -> (folder, description, calibration samples per language, batch size, depths)
MODELS: dict[str, tuple[Any, str, int, int, tuple[int, ...]]] = {
    "tiny": (
        tiny_model_path,
        "hfprune's tiny trained Llama (2 blocks, hidden 128, MLP 352, 8 languages)",
        16,
        16,
        (1,),
    ),
    "gemma3-270m": (
        _gemma_path,
        "Gemma 3 270M (pretrained, 18 blocks, hidden 640, MLP 2048, 262k vocabulary, tied embeddings; from the PyPI GGUF)",
        4,
        4,
        (2, 4),
    ),
}
WIDTHS = (0.1, 0.2, 0.3)


class Bench:
    """The dense model, calibration sets and evaluation texts; every cell prunes a copy of the dense model."""

    def __init__(self, model: str, sentences: int) -> None:
        folder, self.description, self.samples, self.batch, self.depths = MODELS[model]
        loaded = load_model(folder())
        self.dense, self.tokenizer = loaded.model, loaded.tokenizer
        self.texts = {lang: "\n".join(load_flores(lang).splitlines()[:sentences]) for lang in LANGUAGES}
        self.source = open_source(None, langs=list(LANGUAGES))
        self.mixes = {
            "8 languages": ",".join(f"{lang}:{self.samples}" for lang in LANGUAGES),
            "English only": f"en:{self.samples * len(LANGUAGES)}",
        }
        self._calib: dict[str, Any] = {}
        self._caches: dict[str, dict] = {}

    def calibration(self, mix: str):
        if mix not in self._calib:
            self._calib[mix] = build_calibration(self.tokenizer, self.source, mix, seqlen=SEQLEN, seed=0)
        return self._calib[mix]

    def evaluate(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        return flores_perplexities(
            model, self.tokenizer, list(LANGUAGES), context_length=CONTEXT, batch_size=self.batch, texts=self.texts
        )

    def prune(self, structure: str, mix: str, agg: str, refit: bool) -> tuple[torch.nn.Module, dict, float]:
        model = copy.deepcopy(self.dense)
        started = time.perf_counter()
        result = hfprune.prune(
            model,
            self.tokenizer,
            structure=structure,
            calibration=self.calibration(mix),
            lang_agg=agg,
            refit=refit,
            batch_size=self.batch,
            input_cache=self._caches.setdefault(mix, {}),
        )
        return model, result.structured or {}, time.perf_counter() - started


class BenchLock:
    """The shared benchmark lock (what ``flock /tmp/hfprune-bench.lock CMD`` takes), held in turns of about
    ``minutes``: taken before a cell when not held, given back after a cell once the turn is over, so other
    benchmarks run between turns and never during a cell."""

    def __init__(self, path: str | None, minutes: float) -> None:
        self.path, self.turn_s = path, minutes * 60
        self._handle: Any = None
        self._since = 0.0

    @contextlib.contextmanager
    def cell(self):
        if self.path and self._handle is None:
            self._handle = open(self.path, "a")  # noqa: SIM115 - held across cells, closed in release()
            fcntl.flock(self._handle, fcntl.LOCK_EX)
            self._since = time.perf_counter()
        try:
            yield
        finally:
            if self._handle is not None and time.perf_counter() - self._since > self.turn_s:
                self.release()

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def cells(depths: tuple[int, ...], aggs: tuple[str, ...] = AGGS) -> list[dict[str, Any]]:
    """Every (calibration, structure, aggregation, refit) cell, in the order they run: with 8 languages, pooled,
    max and mean with the refit on and off, min with the refit on (its refit-off twin last), depth; then English."""
    grid = []
    for width in WIDTHS:
        for agg in [a for a in ("pooled", "max", "mean") if a in aggs]:
            for refit in (True, False):
                grid.append({"calib": "8 languages", "structure": f"width:{width:g}", "agg": agg, "refit": refit})
        if "min" in aggs:
            grid.append({"calib": "8 languages", "structure": f"width:{width:g}", "agg": "min", "refit": True})
    for depth in depths:
        for agg in aggs:
            grid.append({"calib": "8 languages", "structure": f"depth:{depth}", "agg": agg, "refit": False})
    for width in WIDTHS:
        for refit in (True, False):
            grid.append({"calib": "English only", "structure": f"width:{width:g}", "agg": "pooled", "refit": refit})
    for depth in depths:
        grid.append({"calib": "English only", "structure": f"depth:{depth}", "agg": "pooled", "refit": False})
    for width in WIDTHS if "min" in aggs else ():
        grid.append({"calib": "8 languages", "structure": f"width:{width:g}", "agg": "min", "refit": False})
    return grid


def _key(cell: dict[str, Any]) -> str:
    return f"{cell['calib']}|{cell['structure']}|{cell['agg']}|{cell['refit']}"


def run_quality(bench: Bench, report: dict, save, lock: BenchLock, aggs: tuple[str, ...]) -> dict[str, torch.nn.Module]:
    """Prune and evaluate every cell not already in ``report``; keep one pruned model per shape for the speed part.

    Removing the same blocks gives the same model whatever chose them: such depth cells share one evaluation.
    """
    done = {_key(row): row for row in report.setdefault("cells", [])}
    evaluated = {
        (r["calib"], r["structure"], tuple(r["blocks_removed"])): r
        for r in done.values()
        if r["structure"].startswith("depth")
    }
    shapes: dict[str, torch.nn.Module] = {}
    for cell in cells(bench.depths, aggs):
        needs_shape = cell["structure"] not in shapes
        if _key(cell) in done and not needs_shape:
            continue
        with lock.cell():
            model, record, prune_s = bench.prune(
                cell["structure"], bench.mixes[cell["calib"]], cell["agg"], cell["refit"]
            )
            if needs_shape:
                shapes[cell["structure"]] = model
            if _key(cell) not in done:
                started = time.perf_counter()
                same = evaluated.get((cell["calib"], cell["structure"], tuple(record.get("blocks_removed", []))))
                evaluation = _evaluation_of(same) if same else bench.evaluate(model)
                eval_s = same["eval_s"] if same else round(time.perf_counter() - started, 1)
        if _key(cell) not in done:
            row = {
                **cell,
                "mix": bench.mixes[cell["calib"]],
                "prune_s": round(prune_s, 1),
                "eval_s": eval_s,
                "blocks_removed": record.get("blocks_removed", []),
                "params_before": record["params_before"],
                "params_after": record["params_after"],
                "refit_errors": _refit_errors(record),
                "ppl": {lang: round(v["ppl"], 3) for lang, v in evaluation.items()},
                "bits_per_byte": {lang: round(v["bits_per_byte"], 4) for lang, v in evaluation.items()},
                **{
                    k: (round(v, 4) if isinstance(v, float) else v)
                    for k, v in summarise(evaluation, report["dense"]).items()
                },
                "mean_bpb": round(sum(v["bits_per_byte"] for v in evaluation.values()) / len(evaluation), 4),
                "worst_bpb": round(max(v["bits_per_byte"] for v in evaluation.values()), 4),
            }
            report["cells"].append(row)
            done[_key(cell)] = row
            if cell["structure"].startswith("depth"):
                evaluated[(cell["calib"], cell["structure"], tuple(row["blocks_removed"]))] = row
            print(
                json.dumps({k: row[k] for k in ("calib", "structure", "agg", "refit", "mean_ppl", "worst_ppl")}),
                flush=True,
            )
            save()
        if not needs_shape:
            del model
            gc.collect()
    return shapes


def _evaluation_of(row: dict) -> dict[str, dict[str, float]]:
    return {lang: {"ppl": row["ppl"][lang], "bits_per_byte": row["bits_per_byte"][lang]} for lang in row["ppl"]}


def _refit_errors(record: dict) -> dict[str, float] | None:
    """Mean calibration reconstruction error of the output projections over blocks: dropped vs refit."""
    rows = [v for block in record.get("blocks", []) for v in block.get("refit", {}).values()]
    if not rows:
        return None
    return {
        "dropped": round(sum(r["error_dropped"] for r in rows) / len(rows), 5),
        "refit": round(sum(r["error_refit"] for r in rows) / len(rows), 5),
    }


def run_speed(bench: Bench, shapes: dict[str, torch.nn.Module], rounds: int, new_tokens: int) -> dict[str, Any]:
    """Dense and every shape side by side, interleaved rounds; best round per figure, every round kept."""
    models = {"dense": bench.dense, **shapes}
    prompt = bench.calibration(bench.mixes["English only"]).input_ids[:1, :PROMPT]
    measured = compare_speeds(
        {name: (model, prompt) for name, model in models.items()}, rounds=rounds, new_tokens=new_tokens
    )
    out = {name: {**measured[name], **_sizes(model)} for name, model in models.items()}
    return {"setup": measured["dense"]["setup"], "models": out}


def _sizes(model: torch.nn.Module) -> dict[str, int]:
    from hfprune.models import find_block_stacks

    blocks = find_block_stacks(model)[0].blocks
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        files = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "block_params": sum(p.numel() for p in blocks.parameters()),
        "safetensors_bytes": files,
    }


# --- verdicts and report ---------------------------------------------------------------------------------------
def verdicts(report: dict) -> list[str]:
    lines = []
    speed = report.get("speed", {}).get("models", {})
    dense = speed.get("dense")
    for name, row in speed.items():
        if name == "dense" or not dense:
            continue
        lost = 1 - row["block_params"] / dense["block_params"]
        fell = 1 - row["blocks_decode_ms_per_token"] / dense["blocks_decode_ms_per_token"]
        fell_median = 1 - row["median_blocks_decode_ms_per_token"] / dense["median_blocks_decode_ms_per_token"]
        ok = "met" if fell >= 0.8 * lost else "**missed**"
        lines.append(
            f"- Speed target {ok} for {name}: the blocks lost {lost:.1%} of their parameters and their decode time per "
            f"token fell {fell:.1%} (best rounds; medians {fell_median:.1%}); the target is at least {0.8 * lost:.1%}."
        )
    rows = [r for r in report.get("cells", []) if r["calib"] == "8 languages"]
    for refit in (True, False):
        for width in WIDTHS:
            by_agg = {r["agg"]: r for r in rows if r["structure"] == f"width:{width:g}" and r["refit"] == refit}
            if "pooled" not in by_agg:
                continue
            aware = {a: r for a, r in by_agg.items() if a != "pooled"}
            if not aware:
                continue
            best = min(aware, key=lambda a: aware[a]["worst_ppl"])
            ok = "met" if aware[best]["worst_ppl"] < by_agg["pooled"]["worst_ppl"] else "**missed**"
            lines.append(
                f"- Worst-language target {ok} at width {width:.0%} (refit {'on' if refit else 'off'}): best "
                f"language-aware aggregation {best} {aware[best]['worst_ppl']:.2f} ({aware[best]['worst_lang']}) vs pooled "
                f"{by_agg['pooled']['worst_ppl']:.2f} ({by_agg['pooled']['worst_lang']}); "
                + ", ".join(f"{a} {r['worst_ppl']:.2f}" for a, r in aware.items())
                + "."
            )
    for width in WIDTHS:
        pairs = []
        for agg in AGGS:
            on = next(
                (r for r in rows if r["structure"] == f"width:{width:g}" and r["agg"] == agg and r["refit"]), None
            )
            off = next(
                (r for r in rows if r["structure"] == f"width:{width:g}" and r["agg"] == agg and not r["refit"]), None
            )
            if on and off:
                pairs.append((agg, on["mean_ppl"], off["mean_ppl"]))
        if pairs:
            lowered = [agg for agg, on, off in pairs if on < off]
            ok = "met" if len(lowered) == len(pairs) else "**missed**"
            lines.append(
                f"- Refit target {ok} at width {width:.0%}: mean perplexity with / without refit "
                + ", ".join(f"{agg} {on:.2f} / {off:.2f}" for agg, on, off in pairs)
                + "."
            )
    return lines


def markdown(report: dict) -> str:
    setup = report["setup"]
    langs = list(LANGUAGES)
    dense = report["dense"]
    out = [
        f"# Structured pruning on {setup['model']}: size, CPU speed, FLORES quality per language",
        "",
        f"Command: `{setup['command']}`",
        "",
        f"Model: {setup['description']}. Machine: {setup['cpus']} CPU cores **shared with other engineers' jobs** "
        f"(every cell and the speed part held `{LOCK}`, so no other benchmark ran during them; tests may have), torch "
        f"{setup['torch']} ({setup['threads']} threads), fp32. Calibration: {setup['calibration']}. Evaluation: the "
        f"first {setup['sentences']} FLORES devtest sentences per language, {CONTEXT}-token windows. Importance, "
        "aggregations and refit: `hfprune/pruning/structured/` (docstrings).",
        "",
    ]
    out += ["## Verdict", "", *report.get("verdict", []), ""]
    speed = report.get("speed")
    if speed:
        s = speed["setup"]
        out += [
            "## Size and speed (dense and every shape side by side, one process)",
            "",
            f"Batch 1, {s['prompt_tokens']}-token prompt, {s['new_tokens']} greedy tokens with plain `generate`, "
            f"{s['threads']} threads, {s['rounds']} interleaved rounds, best round shown (medians in the JSON). "
            "Blocks: time from the first block's start to the last block's end per decoded token.",
            "",
            "| model | params | block params | safetensors MB | prefill tok/s | decode tok/s | ms / token | blocks ms / token | blocks' share | block params lost | blocks' time saved |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = speed["models"]["dense"]
        for name, row in speed["models"].items():
            lost = 1 - row["block_params"] / base["block_params"]
            saved = 1 - row["blocks_decode_ms_per_token"] / base["blocks_decode_ms_per_token"]
            out.append(
                f"| {name} | {row['params']:,} | {row['block_params']:,} | {row['safetensors_bytes'] / 1e6:.1f} | "
                f"{row['prefill_tokens_per_s']:.0f} | {row['decode_tokens_per_s']:.1f} | {row['decode_ms_per_token']:.2f} | "
                f"{row['blocks_decode_ms_per_token']:.2f} | {row['blocks_decode_ms_per_token'] / row['decode_ms_per_token']:.0%} | "
                f"{lost:.1%} | {saved:.1%} |"
            )
        out.append("")
    for calib in ("8 languages", "English only"):
        rows = [r for r in report.get("cells", []) if r["calib"] == calib]
        if not rows:
            continue
        mix = rows[0]["mix"]
        out += [
            f"## FLORES perplexity, calibration {calib} (`{mix}`)",
            "",
            "| structure | lang-agg | refit | "
            + " | ".join(langs)
            + " | mean | worst | mean x dense | mean bpb | worst bpb | refit error dropped → refit |",
            "|" + "---|" * (9 + len(langs)),
            "| dense | | | "
            + " | ".join(f"{dense[l]['ppl']:.2f}" for l in langs)
            + f" | {sum(dense[l]['ppl'] for l in langs) / len(langs):.2f} | {max(dense[l]['ppl'] for l in langs):.2f} | 1 | "
            f"{sum(dense[l]['bits_per_byte'] for l in langs) / len(langs):.4f} | {max(dense[l]['bits_per_byte'] for l in langs):.4f} | |",
        ]
        for r in rows:
            errors = r.get("refit_errors")
            refit = ("on" if r["refit"] else "off") if r["structure"].startswith("width") else "n/a"
            out.append(
                f"| {r['structure']} | {r['agg']} | {refit} | "
                + " | ".join(f"{r['ppl'][l]:.2f}" for l in langs)
                + f" | {r['mean_ppl']:.2f} | {r['worst_ppl']:.2f} ({r['worst_lang']}) | {r['mean_ratio']:.3f} | "
                f"{r['mean_bpb']:.4f} | {r['worst_bpb']:.4f} | "
                + (f"{errors['dropped']:.4f} → {errors['refit']:.4f}" if errors else "")
                + " |"
            )
        out.append("")
    out += ["## Notes", "", *NOTES, ""]
    return "\n".join(out)


NOTES = [
    "- With English-only calibration every aggregation ranks neurons and blocks alike (one language: the per-language "
    "normalisation is one positive constant; tested), so only pooled runs there.",
    "- Refit errors are the mean over blocks of the output projection's relative reconstruction error on the "
    "calibration activations (what the least-squares refit minimises); the refit is kept only where it lowers it.",
    "- Depth rows list no refit: removed blocks have no output projection to refit.",
    "- Speed is batch-1 CPU decoding, where small matrices are dominated by per-operation overhead; the blocks' "
    "share of decode time says how much of the time structured pruning can reach at all (the rest is the "
    "embedding lookup, the final norm and the output layer, plus `generate`'s own work).",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", choices=list(MODELS))
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="default results/structured_<model>")
    parser.add_argument("--resume", action="store_true", help="keep the cells of an existing .json, run the rest")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    parser.add_argument("--lock", default=LOCK, help="the shared benchmark lock ('' for none)")
    parser.add_argument("--lock-minutes", type=float, default=40, help="hold the lock in turns of about this long")
    parser.add_argument("--aggs", default=",".join(AGGS), help="aggregations to run with 8 languages (default all)")
    args = parser.parse_args()
    out = args.out or RESULTS / f"structured_{args.model}"
    if args.render:
        report = json.loads(out.with_suffix(".json").read_text())
        report["verdict"] = verdicts(report)
        out.with_suffix(".md").write_text(markdown(report))
        return
    started = time.perf_counter()
    torch.manual_seed(0)
    bench = Bench(args.model, args.sentences)
    previous = (
        json.loads(out.with_suffix(".json").read_text()) if args.resume and out.with_suffix(".json").exists() else {}
    )
    command = "python " + " ".join(sys.argv)
    if previous.get("setup", {}).get("command") and previous["setup"]["command"] != command:
        command = f"{previous['setup']['command']}` then `{command}"  # a resumed run: both invocations
    report: dict[str, Any] = {
        **previous,
        "setup": {
            "model": args.model,
            "description": bench.description,
            "command": command,
            "calibration": f"{bench.samples} samples x {SEQLEN} tokens per language (8 languages: {', '.join(LANGUAGES)}), "
            f"or {bench.samples * len(LANGUAGES)} x {SEQLEN} English; seed 0; shared calibration text, never FLORES",
            "sentences": args.sentences,
            "languages": list(LANGUAGES),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "hfprune": hfprune.__version__,
        },
    }
    lock = BenchLock(args.lock, args.lock_minutes)
    if "dense" not in report:
        with lock.cell():
            report["dense"] = bench.evaluate(bench.dense)

    def save() -> None:
        report["verdict"] = verdicts(report)
        report["timings"] = {"total_s": round(time.perf_counter() - started, 1)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
        out.with_suffix(".md").write_text(markdown(report))

    shapes = run_quality(bench, report, save, lock, tuple(args.aggs.split(",")))
    with lock.cell():
        report["speed"] = run_speed(bench, shapes, args.rounds, args.new_tokens)
    lock.release()
    save()
    print(markdown(report))


if __name__ == "__main__":
    main()
