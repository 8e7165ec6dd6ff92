#!/usr/bin/env python3
"""Copy the data hfprune ships (package data in ``hfprune/data/``) from the team's full bundle.

The full bundle (``../shared/data`` beside the checkout, or ``--from DIR``) is for tests and benchmarks; the
package carries only what its defaults need and what may be redistributed: FLORES-200 devtest (CC BY-SA 4.0),
the calibration text (NTREX-128 and XQuAD contexts, CC BY-SA 4.0; the UDHR, OHCHR, freely reproducible),
XCOPA (CC BY 4.0; English COPA, BSD-2-Clause), PAWS-X (Google's PAWS licence: free use, acknowledgement
asked) and Belebele (CC BY-SA 4.0). Left out: XNLI (CC BY-NC 4.0), XStoryCloze (its English file is
distributed by request only), XWinograd (schemas under several licences), Tatoeba (no default uses it).
Those come from the Hub through ``datasets``.

Run it after the full bundle changes; the files are copied byte for byte (their sha256 stays the bundle's, so
results on shipped and full data compare) and ``manifest.json``, ``SOURCES.md`` and ``LICENSES.md`` are
written beside them. ``--check`` only verifies that the package data equals what this script would write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "hfprune" / "data"

#: Shipped folders of the bundle, with the licence each is shipped under (SPDX ids where one exists).
SHIPPED: dict[str, str] = {
    "flores": "CC-BY-SA-4.0",
    "calib/ntrex": "CC-BY-SA-4.0",
    "calib/xquad_wiki": "CC-BY-SA-4.0",
    "calib/udhr": "OHCHR (UDHR translations: freely reproducible)",
    "xcopa": "CC-BY-4.0 (English validation: COPA, BSD-2-Clause)",
    "pawsx": "PAWS licence (Google LLC: free for any purpose, acknowledgement appreciated)",
    "belebele": "CC-BY-SA-4.0",
}

#: The licences, with where to read them (CC BY-SA 4.0 section 3(a)(1)(C): the URI satisfies the notice).
LICENCE_TEXTS = {
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/legalcode",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/legalcode",
    "BSD-2-Clause": "https://opensource.org/license/bsd-2-clause (COPA, Roemmele et al. 2011)",
    "PAWS": "https://github.com/google-research-datasets/paws/blob/master/LICENSE",
    "OHCHR": "https://www.ohchr.org/en/human-rights/universal-declaration/universal-declaration-human-rights/about-universal-declaration-human-rights-translation-project",
}

#: Headings of the bundle's SOURCES.md whose sections describe the shipped folders.
SECTION = re.compile(r"^## (\S+)/:", re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--check", action="store_true", help="verify hfprune/data; write nothing")
    args = parser.parse_args()
    bundle = json.loads((args.source / "manifest.json").read_text(encoding="utf-8"))
    entries = [dict(e, licence=licence_of(e["file"])) for e in bundle if licence_of(e["file"])]
    outputs = {
        "manifest.json": json.dumps(entries, indent=1, ensure_ascii=False) + "\n",
        "SOURCES.md": sources_text(args.source, entries),
        "LICENSES.md": licences_text(),
    }
    if args.check:
        return check(args.source, entries, outputs)
    if TARGET.exists():
        shutil.rmtree(TARGET)  # the folder is this script's output alone (see SOURCES.md's first line)
    for entry in entries:
        dest = TARGET / entry["file"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.source / entry["file"], dest)
    for name, text in outputs.items():
        (TARGET / name).write_text(text, encoding="utf-8")
    size = sum(e["bytes"] for e in entries)
    print(f"wrote {len(entries)} files ({size / 1e6:.1f} MB) to {TARGET.relative_to(ROOT)}")
    return 0


def licence_of(relative: str) -> str | None:
    folder = relative.rsplit("/", 1)[0]
    return SHIPPED.get(folder)


def sources_text(source: Path, entries: list[dict]) -> str:
    """The bundle's attribution sections for the shipped folders, under a header saying what this folder is."""
    text = (source / "SOURCES.md").read_text(encoding="utf-8")
    starts = [(m.start(), m.group(1)) for m in SECTION.finditer(text)]
    sections = []
    for (start, name), (end, _) in zip(starts, [*starts[1:], (len(text), "")], strict=True):
        if any(folder == name or folder.startswith(name + "/") for folder in SHIPPED):
            sections.append(text[start:end].strip())
    header = (
        "# Data shipped with hfprune: sources and licences\n\n"
        "Written by `scripts/ship_data.py` (do not edit by hand). These files are the default calibration text, "
        "perplexity text and task data of hfprune when no `--calib-source` / `--eval-source` is given and "
        "`HFPRUNE_DATA_DIR` is not set. Each is a byte-for-byte copy of the file in the project's data bundle "
        "(`manifest.json` holds its sha256, rows and origin); the licence of each folder is in `LICENSES.md`.\n"
    )
    return header + "\n" + "\n\n".join(sections) + "\n"


def licences_text() -> str:
    lines = ["# Licences of the shipped data", "", "| folder | licence |", "|---|---|"]
    lines += [f"| `{folder}/` | {licence} |" for folder, licence in SHIPPED.items()]
    lines += ["", "Licence texts:", ""] + [f"- {name}: {url}" for name, url in LICENCE_TEXTS.items()]
    lines += [
        "",
        "Not shipped, because they may not be redistributed here (fetched from the Hub instead): XNLI "
        "(CC BY-NC 4.0), XStoryCloze (English file distributed on request), XWinograd (mixed licences).",
        "",
    ]
    return "\n".join(lines)


def check(source: Path, entries: list[dict], outputs: dict[str, str]) -> int:
    problems = [
        name
        for name, text in outputs.items()
        if not (TARGET / name).is_file() or (TARGET / name).read_text(encoding="utf-8") != text
    ]
    for entry in entries:
        path = TARGET / entry["file"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(entry["file"])
    listed = {e["file"] for e in entries} | set(outputs)
    problems += [
        str(p.relative_to(TARGET))
        for p in TARGET.rglob("*")
        if p.is_file() and str(p.relative_to(TARGET)) not in listed
    ]
    for problem in problems:
        print(f"differs: hfprune/data/{problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
