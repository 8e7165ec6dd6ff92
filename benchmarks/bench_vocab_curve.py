"""Size against quality of a frequency-trimmed vocabulary: Gemma 3 270M, several ``--vocab-size`` budgets.

    flock /tmp/hfprune-bench.lock python benchmarks/bench_vocab_curve.py   # results/vocab_curve_gemma3-270m.*

For each kept-language set (en,de,sw and hi, a second script) and each budget (rows chosen to give about 40% to
70% of the parameters), and for ``--vocab-scripts``: ``trim_vocab_pretrained`` with hfprune's offline default
frequency source (the shipped running text mixed with wordfreq's word lists; the word-list share was chosen on
Tatoeba by ``tune_vocab_frequency.py``, never on FLORES), then FLORES-200 devtest bits per byte (the first
``--sentences`` sentences, hfprune's protocol as ``bench_vocab.py``) for the kept languages and two not kept,
the held-out coverage the built-in check measured, and at the budgets in ``SPEED_AT`` decode tokens/s at batch 1
(hfprune's one meter, dense and trimmed timed in turns). Results are kept as they come (``--merge`` skips done
points); the models are written under hfprune's cache and removed after measuring.
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
from bench_vocab import _parameters, bits_per_byte  # noqa: E402
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402
from hfprune.models.speed import compare_speeds  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "vocab_curve_gemma3-270m"
DENSE_PARAMETERS, ROWS, HIDDEN = 268_098_176, 262_144, 640
SETS = {"en,de,sw": (("en", "de", "sw"), ("es", "ar")), "hi": (("hi",), ("ta", "en"))}
SHARES = {"en,de,sw": (0.40, 0.45, 0.50, 0.55, 0.60, 0.65), "hi": (0.40, 0.45, 0.50, 0.55)}
SPEED_AT = (0.55,)
NEW_TOKENS, ROUNDS = 32, 3


def rows_for(share: float) -> int:
    """Vocabulary rows that leave ``share`` of the dense parameters (tied embeddings: one row is HIDDEN)."""
    return int(ROWS - (1 - share) * DENSE_PARAMETERS / HIDDEN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100, help="FLORES devtest sentences per language for bpb")
    parser.add_argument("--merge", action="store_true", help="keep the points already in the JSON")
    parser.add_argument("--sets", default=";".join(SETS), help="';'-separated sets to run (default all)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    dense = gemma_path()
    path = RESULTS / f"{STEM}.json"
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    report.update(
        command=shlex.join(["python", *sys.argv]),
        machine=f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        sentences=args.sentences,
    )
    points = report.setdefault("points", {})
    dense_bpb = report.setdefault("dense_bits_per_byte", {})
    wanted = {lang for name in args.sets.split(";") for group in SETS[name] for lang in group}
    missing = sorted(wanted - dense_bpb.keys())
    if missing:
        dense_bpb.update(bits_per_byte(dense, missing, args.sentences))
        _save(report, path)
    for name in args.sets.split(";"):
        kept, others = SETS[name]
        for share in (*SHARES[name], "scripts"):
            key = f"{name} · {share if share == 'scripts' else f'{share:.0%} parameters'}"
            if key in points:
                continue
            points[key] = measure(dense, kept, others, share, args.sentences)
            _save(report, path)
            print(json.dumps({key: points[key]}, default=str)[:400], flush=True)
    write_outputs(report)


def write_outputs(report: dict) -> None:
    """The table and the plot (bits per byte change against parameters, per kept language)."""
    (RESULTS / f"{STEM}.md").write_text(markdown(report))
    plot(report, RESULTS / f"{STEM}.png")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = report["dense_bits_per_byte"]
    figure, axis = plt.subplots(figsize=(6.4, 4))
    for name, (kept, _) in SETS.items():
        points = sorted(
            (p for key, p in report["points"].items() if key.startswith(f"{name} ·")), key=lambda p: p["parameters"]
        )
        for lang in kept:
            xs = [p["parameter_share"] for p in points]
            ys = [p["bits_per_byte"][lang] / dense[lang] - 1 for p in points]
            axis.plot(xs, ys, marker="o", label=f"{lang} (kept: {name})")
    axis.axhline(0.02, color="grey", linestyle=":", linewidth=1)
    axis.set_yscale("symlog", linthresh=0.01)
    axis.set_xlabel("parameters (share of Gemma 3 270M)")
    axis.set_ylabel("bits per byte change vs untrimmed")
    axis.set_title("Frequency vocabularies: size against quality (FLORES devtest)", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def measure(dense: Path, kept: tuple, others: tuple, share: float | str, sentences: int) -> dict:
    import hfprune

    scripts = share == "scripts"
    settings = hfprune.VocabSettings(
        langs=kept,
        size=None if scripts else rows_for(share),
        scripts=scripts,
        other_langs=others,
        measure_speed=False,
    )
    out = constants.cache_dir() / "bench-vocab-curve" / "model"
    shutil.rmtree(out, ignore_errors=True)  # this benchmark's own scratch folder
    started = time.perf_counter()
    result = hfprune.trim_vocab_pretrained(str(dense), out, settings)
    trim_s = time.perf_counter() - started
    record = result.record
    point = {
        "settings": {"langs": list(kept), "size": settings.size, "scripts": scripts},
        "rows": record["rows_after"],
        "parameters": _parameters(out),
        "parameter_share": _parameters(out) / DENSE_PARAMETERS,
        "trim_s": round(trim_s, 1),
        "per_language": {
            lang: {k: v for k, v in row.items() if k != "sources"} for lang, row in record["per_language"].items()
        },
        "sources": {lang: row["sources"] for lang, row in record["per_language"].items()},
        "identical_share": {lang: v["identical_share"] for lang, v in record["verification"]["kept"].items()},
        "logits_passed": record["verification"]["logits"]["passed"],
        "bits_per_byte": bits_per_byte(out, [*kept, *others], sentences),
    }
    if not scripts and share in SPEED_AT:
        point["speed"] = speed(dense, out, kept)
    shutil.rmtree(out, ignore_errors=True)
    return point


def speed(dense: Path, trimmed: Path, kept: tuple) -> dict:
    """Decode at batch 1, dense and trimmed timed in turns on one FLORES-style prompt per model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfprune.vocab.verify import held_out_folder

    lines = (held_out_folder(None) / f"{kept[0]}.devtest.txt").read_text(encoding="utf-8").splitlines()[:6]
    prompt = " ".join(lines)
    models = {}
    for name, folder in (("dense", dense), ("trimmed", trimmed)):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        ids = AutoTokenizer.from_pretrained(folder)(prompt, return_tensors="pt").input_ids
        models[name] = (model, ids)
    found = compare_speeds(models, rounds=ROUNDS, new_tokens=NEW_TOKENS)
    return {
        name: {k: found[name][k] for k in ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_ms_per_token")}
        for name in found
    } | {"setup": found["dense"]["setup"]}


def _save(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def markdown(report: dict) -> str:
    dense = report["dense_bits_per_byte"]
    lines = [
        "# Vocabulary size against quality: Gemma 3 270M, frequency vocabularies at several budgets",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']} (2 cores shared with other work).",
        "",
        "Frequency source (offline default): hfprune's shipped running text (NTREX, XQuAD contexts, UDHR; 2 M "
        "characters per language) mixed half and half with wordfreq 3.1.1's word lists (300,000 words; sw has no "
        "list, so its text alone). Bits per byte: FLORES-200 devtest, the first "
        f"{report['sentences']} sentences per language (as `bench_vocab.py`). Held-out coverage: share of the "
        "original tokenization's token occurrences in all 1012 devtest sentences whose token is kept.",
        "",
        "| point | rows | parameters | kept languages: bits per byte (change) | mean kept change | held-out coverage "
        "| identical sentences | not kept | decode tok/s dense -> trimmed |",
        "|---|---:|---:|---|---:|---|---|---|---:|",
    ]
    for key, point in report["points"].items():
        kept = point["settings"]["langs"]
        bpb = point["bits_per_byte"]
        changes = {lang: bpb[lang] / dense[lang] - 1 for lang in bpb}
        mean = sum(changes[lang] for lang in kept) / len(kept)
        speed = point.get("speed")
        lines.append(
            f"| {key} | {point['rows']:,} | {point['parameters']:,} ({point['parameter_share']:.1%}) | "
            + "; ".join(f"{lang} {dense[lang]:.4f} -> {bpb[lang]:.4f} ({changes[lang]:+.2%})" for lang in kept)
            + f" | {mean:+.2%} | "
            + ", ".join(f"{lang} {point['per_language'][lang]['coverage_held_out']:.2%}" for lang in kept)
            + " | "
            + ", ".join(f"{lang} {share:.1%}" for lang, share in point["identical_share"].items())
            + " | "
            + "; ".join(f"{lang} {changes[lang]:+.1%}" for lang in bpb if lang not in kept)
            + " | "
            + (
                f"{speed['dense']['decode_tokens_per_s']:.2f} -> {speed['trimmed']['decode_tokens_per_s']:.2f} "
                f"({speed['trimmed']['decode_tokens_per_s'] / speed['dense']['decode_tokens_per_s']:.2f}x)"
                if speed
                else ""
            )
            + " |"
        )
    lines += ["", f"![size against quality]({STEM}.png)", "", "## Targets (en,de,sw)", "", *targets(report)]
    if report.get("note"):
        lines += ["", report["note"]]
    return "\n".join(lines) + "\n"


def targets(report: dict) -> list[str]:
    dense = report["dense_bits_per_byte"]
    out = []
    for key, point in report["points"].items():
        if not key.startswith("en,de,sw") or "scripts" in key:
            continue
        kept = point["settings"]["langs"]
        changes = [point["bits_per_byte"][lang] / dense[lang] - 1 for lang in kept]
        share, mean, worst = point["parameter_share"], sum(changes) / len(changes), max(changes)
        if share <= 0.55:
            ok = mean <= 0.02 and worst <= 0.03
            out.append(
                f"- {key}: {share:.1%} of the parameters: mean {mean:+.2%} (target <= +2%), worst {worst:+.2%} "
                f"(target <= +3%) -> {'**met**' if ok else '**missed**'}"
            )
        elif share <= 0.65:
            out.append(
                f"- {key}: {share:.1%} of the parameters: mean {mean:+.2%} (target <= +0.5%) -> "
                f"{'**met**' if mean <= 0.005 else '**missed**'}"
            )
        speed = point.get("speed")
        if speed:
            ratio = speed["trimmed"]["decode_tokens_per_s"] / speed["dense"]["decode_tokens_per_s"]
            out.append(
                f"- {key}: decode at batch 1 {ratio:.2f}x the untrimmed model (target >= 1.5x) -> "
                f"{'**met**' if ratio >= 1.5 else '**missed**'}"
            )
    return out


if __name__ == "__main__":
    main()
