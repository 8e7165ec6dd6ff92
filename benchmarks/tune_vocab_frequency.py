"""Choose the word-list share of trim-vocab's frequency source on text that is *not* the evaluation set.

For Gemma 3 270M's tokenizer and the kept languages, rank tokens by the shipped running text mixed with
``wordfreq``'s word lists at several shares, fill vocabularies of several sizes (closed under the merges, as
trim-vocab does) and measure, on Tatoeba sentences (``../shared/data/tatoeba``; English from its translations),
the share of token occurrences the kept set covers and the share of sentences kept whole. FLORES devtest, on
which the size/quality curve is reported (``bench_vocab.py --curve``), is never read here.

    python benchmarks/tune_vocab_frequency.py   # writes benchmarks/results/vocab_frequency_tuning.{json,md}
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gemma3_270m import gemma_path  # noqa: E402

from hfprune.calibration import open_source  # noqa: E402
from hfprune.vocab.corpus import count_tokens  # noqa: E402
from hfprune.vocab.families import read_definition  # noqa: E402
from hfprune.vocab.frequency import language_frequencies, rank_tokens, word_list_counts  # noqa: E402
from hfprune.vocab.selection import select_tokens  # noqa: E402
from hfprune.vocab.settings import DEFAULT_VOCAB_CHARS  # noqa: E402

LANGS = ("en", "de", "sw")
SHARES = (0.0, 0.25, 0.5, 0.75)
SIZES = (48_000, 73_000, 90_000)
SENTENCES = 2000
OUT = ROOT / "benchmarks" / "results" / "vocab_frequency_tuning"


def tatoeba(lang: str) -> list[str]:
    """Tatoeba sentences of ``lang`` (English: the translations beside the German ones)."""
    folder = ROOT.parent / "shared" / "data" / "tatoeba"
    path, field = (folder / "de.test.jsonl", "en") if lang == "en" else (folder / f"{lang}.test.jsonl", "text")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row[field] for row in rows[:SENTENCES]]


def main() -> None:
    from transformers import AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gemma_path())
    definition = read_definition(tokenizer)
    corpus = count_tokens(tokenizer, open_source(None, langs=list(LANGS)), list(LANGS), DEFAULT_VOCAB_CHARS)
    lists = {lang: word_list_counts(tokenizer, lang) for lang in LANGS}
    held_out = {lang: tokenizer(tatoeba(lang), add_special_tokens=False)["input_ids"] for lang in LANGS}
    rows = []
    for share in SHARES:
        frequencies = {
            lang: language_frequencies(corpus.languages[lang].counts, {}, lists[lang], list_share=share)
            for lang in LANGS
        }
        ranked = rank_tokens(frequencies, dict.fromkeys(LANGS, 1.0))
        for size in SIZES:
            kept = set(
                select_tokens(definition, lambda ranked=ranked: ranked, rows=262_144, referenced=set(), size=size).keep
            )
            row = {"list_share": share, "size": size}
            for lang, encoded in held_out.items():
                occurrences = sum(len(ids) for ids in encoded)
                row[f"{lang}_coverage"] = sum(t in kept for ids in encoded for t in ids) / occurrences
                row[f"{lang}_whole"] = sum(all(t in kept for t in ids) for ids in encoded) / len(encoded)
            row["mean_coverage"] = sum(row[f"{lang}_coverage"] for lang in LANGS) / len(LANGS)
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {
        "command": shlex.join(["python", *sys.argv]),
        "langs": LANGS,
        "word_lists": {lang: (lists[lang] or (None, None))[1] for lang in LANGS},
        "held_out": f"Tatoeba, first {SENTENCES} sentences per language (en: the translations of de)",
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    OUT.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    OUT.with_suffix(".md").write_text(markdown(report))


def markdown(report: dict) -> str:
    langs = report["langs"]
    lines = [
        "# trim-vocab frequency source: how much of the word lists to mix in (chosen on Tatoeba, not FLORES)",
        "",
        f"Command: `{report['command']}` ({report['seconds']} s). Tokenizer: Gemma 3 270M. Held-out text: "
        f"{report['held_out']}. Running text: hfprune's shipped calibration text (NTREX, XQuAD, UDHR), "
        f"2,000,000 characters per language. Word lists: wordfreq where it has the language "
        f"({', '.join(lang for lang in langs if report['word_lists'][lang]) or 'none'}).",
        "",
        "| word-list share | vocabulary rows | "
        + " | ".join(f"{lang} coverage | {lang} whole sentences" for lang in langs)
        + " | mean coverage |",
        "|---:|---:|" + "---:|---:|" * len(langs) + "---:|",
    ]
    for row in report["rows"]:
        cells = " | ".join(f"{row[f'{lang}_coverage']:.2%} | {row[f'{lang}_whole']:.1%}" for lang in langs)
        lines.append(f"| {row['list_share']:.2f} | {row['size']:,} | {cells} | {row['mean_coverage']:.2%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
