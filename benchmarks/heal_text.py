"""A larger healing text for the benchmarks: the shared calibration text plus the other shared corpora that no
benchmark scores healing on, so that a CPU run can heal on more distinct text than calibration alone holds.

    python benchmarks/heal_text.py   # writes hfprune's cache bench-heal/text/, prints its tokens per language

The folder (a ``--calib-source`` for ``hfprune heal`` or ``bench_heal.py``) holds ``ntrex/``, ``udhr/`` and
``xquad_wiki/`` copied unchanged from ``../shared/data/calib`` and then ``zz_more/{lang}.txt``. ``FolderSource``
reads sub-folders in sorted order, so each language's token stream starts exactly as the default source's does:
its windows, and so the hashes of the mask's calibration samples that healing sets aside, are the same. The added
lines, deduplicated: XNLI validation premises and hypotheses, PAWS-X sentences, Tatoeba sentences (each file's
own language, and the English side of every pair). Left out on purpose: FLORES (the reported bits per byte),
Belebele (its passages are FLORES sentences), XStoryCloze (the zero-shot task) and the multiple-choice tasks
XCOPA / XWinograd (short prompts, and scored elsewhere). Licences: ``../shared/data/SOURCES.md`` (XNLI is CC BY-NC:
the folder is for benchmarks here, never shipped).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemma3_270m import gemma_path  # noqa: E402

from hfprune import constants  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORPORA = ("ntrex", "udhr", "xquad_wiki")
LANGS = ("en", "de", "sw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=constants.cache_dir() / "bench-heal" / "text")
    parser.add_argument("--langs", default=",".join(LANGS))
    args = parser.parse_args()
    langs = args.langs.split(",")
    if args.out.exists() and not _written_here(args.out):
        raise SystemExit(f"{args.out} exists and is not a folder this script wrote; pass another --out")
    shutil.rmtree(args.out, ignore_errors=True)  # this script's own output (checked above)
    for corpus in CORPORA:
        for lang in langs:
            source = args.data / "calib" / corpus / f"{lang}.txt"
            if source.is_file():
                (args.out / corpus).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, args.out / corpus / f"{lang}.txt")
    more = args.out / "zz_more"
    more.mkdir(parents=True)
    extra = more_lines(args.data, langs)
    for lang in langs:
        (more / f"{lang}.txt").write_text("\n".join(extra[lang]) + "\n", encoding="utf-8")
    print(json.dumps(token_counts(args.out, langs), indent=2))


def _written_here(folder: Path) -> bool:
    """Only this script's sub-folders of .txt files: what it may replace."""
    entries = list(folder.iterdir())
    return any(p.name == "zz_more" for p in entries) and all(
        p.is_dir() and p.name in (*CORPORA, "zz_more") and all(f.suffix == ".txt" for f in p.iterdir()) for p in entries
    )


def more_lines(data: Path, langs: list[str]) -> dict[str, list[str]]:
    """Each language's added lines, in a fixed order, each once."""
    lines: dict[str, dict[str, None]] = {lang: {} for lang in langs}

    def add(lang: str, text: str) -> None:
        text = " ".join(str(text).split())
        if lang in lines and text:
            lines[lang][text] = None

    for lang in langs:
        for row in _rows(data / "xnli" / f"{lang}.validation.jsonl"):
            add(lang, row["premise"])
            add(lang, row["hypothesis"])
        for path in sorted((data / "pawsx").glob(f"{lang}.*.jsonl")):
            for row in _rows(path):
                add(lang, row["sentence1"])
                add(lang, row["sentence2"])
    for path in sorted((data / "tatoeba").glob("*.test.jsonl")):
        for row in _rows(path):
            add(path.name.split(".")[0], row["text"])
            add("en", row["en"])
    return {lang: list(found) for lang, found in lines.items()}


def _rows(path: Path) -> list[dict]:
    """A corpus file's rows; none when the shared folder lacks that language's file."""
    from hfprune.evaluation.data import read_jsonl

    return read_jsonl(path) if path.is_file() else []


def token_counts(folder: Path, langs: list[str]) -> dict[str, int]:
    """Tokens per language in the whole folder, with the dense model's tokenizer (the default source's stream
    joins every line with a newline the same way)."""
    from transformers import AutoTokenizer

    from hfprune.calibration.sources import FolderSource

    tokenizer = AutoTokenizer.from_pretrained(gemma_path())
    source = FolderSource(folder)
    return {
        lang: len(tokenizer("\n".join(source.documents(lang, 0)), add_special_tokens=False, verbose=False).input_ids)
        for lang in langs
    }


if __name__ == "__main__":
    main()
