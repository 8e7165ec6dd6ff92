"""Vocabulary trimming on a real multilingual model: Gemma 3 270M (262,144 tokens, tied embeddings).

    flock /tmp/hfprune-bench.lock python benchmarks/bench_vocab.py     # results/vocab_gemma3-270m.{json,md}

For each kept-language set (en; en,de,sw; zh; hi; en,de,fr,es,zh,ar,hi,ru), with a frequency vocabulary (the
tokens the shared calibration text of those languages uses) and with ``--vocab-scripts`` (plus every token
written in their scripts), and for Wanda 50% combined with trimming (en,de,sw): kept tokens, parameters,
safetensors bytes, peak RSS of a fresh process loading the model with ``from_pretrained``, CPU prefill and
decode tokens/s with plain ``transformers`` ``generate`` (greedy, the same prompts, dense and trimmed timed in
turn in one process), the share of FLORES devtest sentences tokenized identically (all 1012 per kept
language: the built-in verification), and FLORES bits per byte (the first ``--sentences`` devtest sentences)
per kept language and for the two languages not kept that the verification picks.

Every step's results are kept in the JSON as they come, so a re-run with ``--merge`` skips what is done.
The trimmed models are written under hfprune's cache (``bench-vocab/``), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402
from hfprune.models.speed import compare_speeds, summed  # noqa: E402
from hfprune.vocab.verify import held_out_folder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "vocab_gemma3-270m"
LANG_SETS = {
    "en": ("en",),
    "en,de,sw": ("en", "de", "sw"),
    "zh": ("zh",),
    "hi": ("hi",),
    "8 languages": ("en", "de", "fr", "es", "zh", "ar", "hi", "ru"),
}
#: Wanda 50% calibration: 4 samples of 256 tokens per kept language (as methods_gemma3-270m.md).
WANDA_SAMPLES, WANDA_SEQLEN = 4, 256
#: New tokens per decode timing, timings per (model, prompt), prompts (one per kept language, at most this many),
#: FLORES sentences joined into one prompt (a prefill of a couple of hundred tokens, not just call overhead).
NEW_TOKENS, REPEATS, PROMPTS, PROMPT_SENTENCES = 32, 3, 2, 6


def configurations() -> dict[str, dict]:
    configs = {}
    for name, langs in LANG_SETS.items():
        configs[f"{name} · frequency"] = {"langs": langs, "scripts": False}
        configs[f"{name} · scripts"] = {"langs": langs, "scripts": True}
    configs["en,de,sw · frequency + wanda 50%"] = {"langs": LANG_SETS["en,de,sw"], "scripts": False, "wanda": True}
    configs["en,de,sw · scripts + wanda 50%"] = {"langs": LANG_SETS["en,de,sw"], "scripts": True, "wanda": True}
    configs["untrimmed + wanda 50% (en,de,sw calibration)"] = {
        "langs": LANG_SETS["en,de,sw"],
        "wanda": True,
        "trim": False,
        "others": ("es", "ar"),
    }
    return configs


def folder_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


# --- building the models ------------------------------------------------------------------------------------------
def build(name: str, config: dict, dense: Path, root: Path) -> Path:
    """The trimmed (and/or pruned) model's folder, built once and cached."""
    import hfprune

    out = root / folder_name(name)
    if (out / constants.METADATA_FILE).is_file():
        return out
    vocab = (
        hfprune.VocabSettings(langs=config["langs"], scripts=config["scripts"], measure_speed=False)
        if config.get("trim", True)
        else None
    )
    if config.get("wanda"):
        mix = ",".join(f"{lang}:{WANDA_SAMPLES}" for lang in config["langs"])
        settings = hfprune.PruneSettings(
            method="wanda", sparsity=0.5, calibration=mix, seqlen=WANDA_SEQLEN, device="cpu", vocab=vocab
        )
        hfprune.prune_pretrained(str(dense), out, settings, progress=True)
    else:
        hfprune.trim_vocab_pretrained(str(dense), out, vocab)
    return out


def describe(folder: Path, config: dict) -> dict:
    meta = json.loads((folder / constants.METADATA_FILE).read_text())
    record = meta.get("vocab") or {}
    row = {
        "folder": str(folder),
        "kept_tokens": record.get("rows_after", 262144),
        "parameters": _parameters(folder),
        "safetensors_bytes": _bytes(folder),
        "achieved_sparsity": meta.get("achieved_sparsity"),
        "kept_languages": list(config["langs"]),
        "other_languages": list(config.get("others", ())),
    }
    if record:
        verification = record["verification"]
        row.update(
            selection=record["selection"],
            identical=verification["kept"],
            not_kept=verification["not_kept"],
            logits=verification["logits"],
            kept_languages=record["languages"],
            other_languages=list(verification["not_kept"]),
        )
    return row


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def _parameters(folder: Path) -> int:
    """Parameters stored in the safetensors files (a tied head is stored once, as ``model.parameters()`` counts it)."""
    from math import prod

    from hfprune.models.streaming import CheckpointReader

    return sum(prod(entry["shape"]) for _, _, entry in CheckpointReader(folder).entries.values())


# --- measurements ---------------------------------------------------------------------------------------------
def load_rss_mb(folder: Path) -> float:
    """Peak RSS of a fresh Python process that imports transformers, loads the model (fp32, CPU) and runs one
    8-token forward: weights are memory-mapped and become resident only when used, so loading alone would
    mostly measure the libraries. Read from ``VmHWM`` (the new process's own high-water mark): Linux carries the
    parent's ``ru_maxrss`` over ``fork`` + ``exec``, so ``getrusage`` in the child would report the parent's."""
    code = (
        "import transformers, torch\n"
        f"m = transformers.AutoModelForCausalLM.from_pretrained({str(folder)!r}, dtype=torch.float32)\n"
        "m(input_ids=torch.arange(2, 10)[None])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(done.stdout.strip().splitlines()[-1]), 1)


def side_by_side(models: dict, prompts: list[str]) -> dict:
    """hfprune's speed meter (``models.speed.compare_speeds``: the models timed in turns, best of REPEATS rounds)
    on each prompt, in each model's own tokens; summed over the prompts as ``measure_prompts`` sums them
    (``speed.summed``)."""
    per_prompt = []
    for prompt in prompts:
        turns = {name: (model, torch.tensor([tok(prompt)["input_ids"]])) for name, (model, tok) in models.items()}
        per_prompt.append(compare_speeds(turns, rounds=REPEATS, new_tokens=NEW_TOKENS))
    out = {}
    for name in models:
        total = summed([found[name] for found in per_prompt])
        out[name] = {
            "prompt_tokens": total["prompt_tokens"],
            "prefill_s": round(total["prefill_s"], 3),
            "prefill_tokens_per_s": round(total["prefill_tokens_per_s"], 1),
            "decode_tokens_per_s": round(total["decode_tokens_per_s"], 2),
        }
    return out


#: A chat template of our own with Gemma's turn markers (the GGUF conversion carries none): it must render the same
#: text, and the same tokens (remapped), after trimming.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def chat_template_check(dense: Path) -> dict:
    """Trim en,de,sw (frequency) from a tokenizer given a chat template: the built-in check's verdict."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hfprune

    model = AutoModelForCausalLM.from_pretrained(dense).eval()
    tokenizer = AutoTokenizer.from_pretrained(dense)
    tokenizer.chat_template = CHAT_TEMPLATE
    result = hfprune.trim_vocab(model, tokenizer, langs="en,de,sw", measure_speed=False, verify_sentences=50)
    return {"template": CHAT_TEMPLATE, **result.record["verification"]["chat_template"]}


def bits_per_byte(
    folder: Path, langs: list[str], sentences: int | None, texts: dict[str, str] | None = None
) -> dict[str, float]:
    """FLORES devtest bits per byte of the first ``sentences`` lines, or of ``texts`` per language when given."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfprune.analysis.flores_eval import flores_perplexities

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    scores = flores_perplexities(model, tokenizer, langs, sentences=sentences, texts=texts)
    return {lang: round(v["bits_per_byte"], 5) for lang, v in scores.items()}


# --- the run --------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100, help="FLORES devtest sentences per language for bpb")
    parser.add_argument("--merge", action="store_true", help="keep the results already in the JSON; do the rest")
    parser.add_argument("--only", default=None, help="';'-separated configuration names (default all)")
    parser.add_argument("--redo", default="", help="with --merge: measure these parts again (e.g. rss,chat)")
    parser.add_argument("--parts", default="build,rss,chat,bpb,speed", help="steps to run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    parts = set(args.parts.split(","))
    path = RESULTS / f"{STEM}.json"
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    command = "flock /tmp/hfprune-bench.lock python " + shlex.join(sys.argv)
    report["commands"] = [*report.get("commands", [report["command"]] if "command" in report else []), command]
    report.update(
        command=report["commands"][0],
        machine=f"{os.cpu_count()} CPU cores shared with other engineers' work, {platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        sentences=args.sentences,
    )
    report.setdefault("rows", {})
    redo = set(filter(None, args.redo.split(",")))
    for row in [report.get("dense", {}), *report["rows"].values()]:
        if "rss" in redo:
            row.pop("load_peak_rss_mb", None)
        if "speed" in redo:
            row.pop("speed", None)
    if "chat" in redo:
        report.pop("chat_template", None)
    dense = gemma_path()
    root = constants.cache_dir() / "bench-vocab"
    root.mkdir(parents=True, exist_ok=True)
    configs = configurations()
    chosen = [n for n in configs if args.only is None or n in args.only.split(";")]

    def save() -> None:
        path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        (RESULTS / f"{STEM}.md").write_text(markdown(report))

    dense_row = report.setdefault("dense", {"folder": str(dense)})
    dense_row.setdefault("kept_tokens", 262144)
    dense_row.setdefault("safetensors_bytes", _bytes(dense))
    dense_row.setdefault("parameters", _parameters(dense))
    if "rss" in parts and "load_peak_rss_mb" not in dense_row:
        dense_row["load_peak_rss_mb"] = load_rss_mb(dense)
    for name in chosen:
        row = report["rows"].setdefault(name, {})
        if "build" in parts and "kept_tokens" not in row:
            started = time.perf_counter()
            folder = build(name, configs[name], dense, root)
            row.update(describe(folder, configs[name]), build_s=round(time.perf_counter() - started, 1))
            save()
        if "rss" in parts and "kept_tokens" in row and "load_peak_rss_mb" not in row:
            row["load_peak_rss_mb"] = load_rss_mb(Path(row["folder"]))
            save()
    if "chat" in parts and "chat_template" not in report:
        report["chat_template"] = chat_template_check(dense)
        save()
    if "bpb" in parts:
        needed = sorted({lang for n in chosen for lang in _eval_langs(report["rows"].get(n, {}), configs[n])})
        have = dense_row.setdefault("bits_per_byte", {})
        missing = [lang for lang in needed if lang not in have]
        if missing:
            have.update(bits_per_byte(dense, missing, args.sentences))
            save()
        for name in chosen:
            row = report["rows"].get(name, {})
            if "folder" in row and "bits_per_byte" not in row:
                row["bits_per_byte"] = bits_per_byte(
                    Path(row["folder"]), _eval_langs(row, configs[name]), args.sentences
                )
                save()
    if "speed" in parts:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base = (AutoModelForCausalLM.from_pretrained(dense).eval(), AutoTokenizer.from_pretrained(dense))
        flores = held_out_folder(None)  # FLORES devtest: $HFPRUNE_DATA_DIR's, else the shipped copy
        for name in chosen:
            row = report["rows"].get(name, {})
            if "folder" not in row or "speed" in row:
                continue
            langs = list(configs[name]["langs"])[:PROMPTS]
            prompts = [
                " ".join((flores / f"{lang}.devtest.txt").read_text("utf-8").splitlines()[:PROMPT_SENTENCES])
                for lang in langs
            ]
            trimmed = (
                AutoModelForCausalLM.from_pretrained(row["folder"]).eval(),
                AutoTokenizer.from_pretrained(row["folder"]),
            )
            row["speed"] = side_by_side({"dense": base, "trimmed": trimmed}, prompts)
            row["speed"]["prompts"] = langs
            del trimmed
            save()
    report["peak_rss_mb_this_run"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    save()


def _eval_langs(row: dict, config: dict) -> list[str]:
    return list(dict.fromkeys([*config["langs"], *(row.get("other_languages") or config.get("others", ()))]))


# --- the report -----------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    dense = report.get("dense", {})
    rows = report.get("rows", {})
    params_dense = dense.get("parameters", 268_098_176)
    lines = [
        "# Vocabulary trimming: Gemma 3 270M",
        "",
        "Commands (in order; `--merge` keeps what the earlier ones measured): "
        + "; ".join(f"`{c}`" for c in report.get("commands", [report.get("command")])),
        "",
        f"Machine: {report.get('machine')}. Speeds (hfprune's one meter, `hfprune.models.speed`) are the best of {REPEATS} rounds with the dense and the trimmed model "
        "timed in turn in one process; other engineers' jobs on the same 2 cores move them (compare ratios within a "
        "row, not across rows).",
        "",
        f"Bits per byte: FLORES-200 devtest, the first {report.get('sentences')} sentences per language, "
        "windows of 512 tokens (BOS included), hfprune's perplexity. Identical tokenization: all 1012 devtest "
        "sentences per kept language (the built-in verification). Frequency vocabulary: the tokens the shared "
        "calibration text (NTREX, XQuAD contexts, UDHR) of the kept languages uses, closed under the merges, plus "
        "special/added tokens and the 256 byte pieces.",
        "",
        "| configuration | kept tokens | parameters | safetensors MB | load + forward peak RSS MB | prefill tok/s dense -> trimmed "
        "| decode tok/s dense -> trimmed | identical tokenization (kept) | logits check |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
        f"| dense | 262,144 | {params_dense:,} | {dense.get('safetensors_bytes', 0) / 1e6:,.1f} | "
        f"{dense.get('load_peak_rss_mb', 'n/a')} | | | | |",
    ]
    for name, row in rows.items():
        if "kept_tokens" not in row:
            continue
        speed = row.get("speed") or {}
        prefill = decode = "n/a"
        if speed:
            d, t = speed["dense"], speed["trimmed"]
            prefill = f"{d['prefill_tokens_per_s']:.1f} -> {t['prefill_tokens_per_s']:.1f} ({t['prefill_tokens_per_s'] / d['prefill_tokens_per_s']:.2f}x)"
            decode = f"{d['decode_tokens_per_s']:.2f} -> {t['decode_tokens_per_s']:.2f} ({t['decode_tokens_per_s'] / d['decode_tokens_per_s']:.2f}x)"
        identical = ", ".join(f"{lang} {v['identical_share']:.1%}" for lang, v in (row.get("identical") or {}).items())
        logits = row.get("logits") or {}
        check = f"max diff {logits['max_abs_difference']:.1g}" if logits else "n/a (not trimmed)"
        lines.append(
            f"| {name} | {row['kept_tokens']:,} | {row['parameters']:,} ({row['parameters'] / params_dense:.1%}) | "
            f"{row['safetensors_bytes'] / 1e6:,.1f} | {row.get('load_peak_rss_mb', 'n/a')} | {prefill} | {decode} | "
            f"{identical or 'n/a'} | {check} |"
        )
    lines += ["", "## Bits per byte (dense -> this model), kept languages and two not kept", ""]
    lines += ["| configuration | kept languages | mean kept change | not kept |", "|---|---|---:|---|"]
    dense_bpb = dense.get("bits_per_byte", {})
    for name, row in rows.items():
        bpb = row.get("bits_per_byte")
        if not bpb:
            continue
        kept = [lang for lang in row.get("kept_languages", []) if lang in bpb and lang in dense_bpb]
        others = [lang for lang in bpb if lang not in kept and lang in dense_bpb]
        mean_dense = sum(dense_bpb[lang] for lang in kept) / len(kept)
        mean_row = sum(bpb[lang] for lang in kept) / len(kept)
        fmt = lambda lang, bpb=bpb: _change(lang, dense_bpb[lang], bpb[lang])  # noqa: E731
        lines.append(
            f"| {name} | {'; '.join(fmt(lang) for lang in kept)} | {mean_row / mean_dense - 1:+.2%} | "
            f"{'; '.join(fmt(lang) for lang in others) or 'n/a'} |"
        )
    chat = report.get("chat_template")
    if chat:
        lines += [
            "",
            f"Chat template (our own, with Gemma's `<start_of_turn>` / `<end_of_turn>` tokens; en,de,sw frequency "
            f"trim): same text {chat.get('same_text')}; the template's own text tokenized the same (remapped) "
            f"{chat.get('same_ids')}; with two held-out sentences as messages {chat.get('same_ids_with_messages')}.",
        ]
    lines += ["", "## Targets (issue 16)", ""] + targets(report)
    return "\n".join(lines) + "\n"


def _change(lang: str, before: float, after: float) -> str:
    return f"{lang} {before:.4f} -> {after:.4f} ({after / before - 1:+.1%})"


def targets(report: dict) -> list[str]:
    rows, dense = report.get("rows", {}), report.get("dense", {})
    dense_bpb = dense.get("bits_per_byte", {})
    out = []
    freq = rows.get("en,de,sw · frequency", {})
    scripts = rows.get("en,de,sw · scripts", {})

    def mean_change(row: dict) -> float | None:
        bpb = row.get("bits_per_byte") or {}
        kept = [lang for lang in ("en", "de", "sw") if lang in bpb and lang in dense_bpb]
        if not kept:
            return None
        return sum(bpb[lang] for lang in kept) / sum(dense_bpb[lang] for lang in kept) - 1

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("**met**" if ok else "**MISSED**")

    if "parameters" in freq:
        share = freq["parameters"] / 268_098_176
        out.append(f"- en,de,sw frequency: parameters <= 55% of the original: {share:.1%} -> {verdict(share <= 0.55)}")
    change = mean_change(freq)
    out.append(
        f"- en,de,sw frequency: mean kept-language bits per byte within +1% of the untrimmed model: "
        f"{'n/a' if change is None else f'{change:+.2%}'} -> {verdict(None if change is None else change <= 0.01)}"
    )
    if scripts.get("identical"):
        worst = min(v["identical_share"] for v in scripts["identical"].values())
        out.append(
            f"- en,de,sw --vocab-scripts: identical tokenization on >= 99.9% of kept-language FLORES sentences: "
            f"worst language {worst:.2%} -> {verdict(worst >= 0.999)}"
        )
    change = mean_change(scripts)
    if change is not None:
        per_lang = scripts.get("bits_per_byte", {})
        above = [lang for lang in ("en", "de", "sw") if per_lang.get(lang, 0) > dense_bpb.get(lang, 0)]
        out.append(
            f"- en,de,sw --vocab-scripts: bits per byte not above the untrimmed model's: mean {change:+.3%}, languages "
            f"above: {', '.join(above) or 'none'} -> {verdict(not above)}"
        )
    speed = freq.get("speed")
    if speed:
        ratio = speed["trimmed"]["decode_tokens_per_s"] / speed["dense"]["decode_tokens_per_s"]
        out.append(
            f"- en,de,sw frequency: decode tokens/s >= 1.5x the untrimmed model's: {ratio:.2f}x -> {verdict(ratio >= 1.5)}"
        )
    return out


if __name__ == "__main__":
    main()
