"""Which learning rate and loss recipe heal best per token: a sweep on one student and one budget, chosen on
held-out text that the reported numbers never use.

    HFPRUNE_DATA_DIR=../shared/data python benchmarks/bench_heal_lr.py --lrs 2e-5,1e-4,3e-4,1e-3 --tokens 16384
    HFPRUNE_DATA_DIR=../shared/data python benchmarks/bench_heal_lr.py --merge --recipes 'kd=1,T=1;kd=1;h=1'

``--lrs`` sweeps the rate at the default loss; ``--recipes`` names further cells as ``;``-separated lists of
``lr=``, ``T=`` (distillation temperature), ``kd=`` (the KD share of the loss, the rest next-token cross-entropy),
``h=`` (the hidden-state term's weight), ``seed=`` (the healing seed: its order and text draw, to see how much a
recipe's lead is noise) and ``accum=`` (forwards per optimizer step: ``accum`` times ``--batch-size`` samples per
step, so a higher rate meets less gradient noise), each unnamed field at ``hfprune heal``'s default.

A budget, mix or text other than the first sweep's (``--tokens 16384``, equal weights, hfprune's text) writes its own
results file, ``results/heal_lr_gemma3-270m-<tokens>.{json,md}``: a rate chosen at 16 optimizer steps need not be
the one for hundreds, so the longer budgets are swept apart, e.g.

    HFPRUNE_DATA_DIR=../shared/data python benchmarks/bench_heal_lr.py --tokens 98304 --weights en:2,de:2,sw:1 \
        --calib-source ~/.cache/hfprune/bench-heal/text --recipes 'lr=2e-5;lr=1e-4,accum=4;lr=5e-5'

The student is one of ``bench_heal.STUDENTS`` (default the width one, whose target was missed at the default
rate), healed exactly as ``bench_heal.py`` heals it (full mode, ``--weights`` default en:1,de:1,sw:1, the
mask's samples excluded) with each recipe. Each healed copy is scored in bits per byte on FLORES-200 devtest
sentences ``--select`` (default 500:600), disjoint from the first 100 that ``bench_heal.py`` reports and from the 16 the
heal record reads, so picking a recipe here does not tune on the reported text. The chosen recipe is the one
whose worst kept language won back the most (the target is "every kept language"). ``--merge`` keeps recipes
already measured and refuses a file recorded with another budget, mix, text or selection.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
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
from hfprune.healing.settings import DEFAULT_LR  # noqa: E402

STEM = "heal_lr_gemma3-270m"


def main() -> None:
    from hfprune.healing import HealSettings, heal_pretrained
    from hfprune.system import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="width 0.2 + scripts vocabulary", choices=list(STUDENTS))
    parser.add_argument("--lrs", default="", help="comma-separated AdamW learning rates, at the default loss")
    parser.add_argument("--recipes", default="", help="';'-separated recipes, e.g. 'kd=1,T=1;h=1' (see above)")
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--select", default="500:600", help="FLORES devtest lines scored, start:stop")
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default=EQUAL_WEIGHTS, help="the healing mix's relative weights (bench_heal.py)")
    parser.add_argument("--calib-source", default=None, help="the healing text folder (default: hfprune's text)")
    parser.add_argument("--merge", action="store_true")
    args = parser.parse_args()
    start, stop = (int(x) for x in args.select.split(":"))
    texts = {lang: _lines(lang, start, stop) for lang in KEPT}
    setting = _setting(args)
    path = RESULTS / f"{_stem(setting)}.json"
    report = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    recorded = {name: report.get(name, default) for name, default in FIRST_SWEEP.items()} if report else setting
    if recorded != setting:
        raise SystemExit(f"{path.name} was recorded with {recorded}, not {setting}: drop --merge or match them")
    device = resolve_device(args.device)
    env = [f"HFPRUNE_DATA_DIR={os.environ['HFPRUNE_DATA_DIR']}"] if os.environ.get("HFPRUNE_DATA_DIR") else []
    report["commands"] = [*report.get("commands", []), shlex.join([*env, "python", *sys.argv])]
    report.update(
        student=args.student,
        **setting,
        batch_size=args.batch_size,
        seqlen=args.seqlen,
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
    recipes = [Recipe(lr=float(x)) for x in args.lrs.split(",") if x]
    recipes += [Recipe.parse(text) for text in args.recipes.split(";") if text]
    if not recipes:
        parser.error("give --lrs and/or --recipes")
    for recipe in recipes:
        key = recipe.key
        if key in cells:
            continue
        out = root / f"{_slug(args.student)}-lr"
        settings = HealSettings(
            calibration=args.weights,
            tokens=args.tokens,
            calib_source=args.calib_source,
            seqlen=args.seqlen,
            batch_size=args.batch_size,
            grad_accum=recipe.grad_accum,
            lr=recipe.lr,
            temperature=recipe.temperature,
            kd_weight=recipe.kd_weight,
            hidden_weight=recipe.hidden_weight,
            seed=recipe.seed,
            device=args.device,
            quality_sentences=0,
        )
        started = time.perf_counter()
        record = heal_pretrained(student, str(dense), out, settings, overwrite=True, progress=True).record
        bpb = bits_per_byte(out, KEPT, None, texts)
        cells[key] = {
            **asdict(recipe),
            "seconds": round(time.perf_counter() - started, 1),
            "seconds_per_million_tokens": round(record["time_s"] / args.tokens * 1e6, 1),
            "steps": record.get("steps"),
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
    report.pop("chosen_lr", None)  # written by the sweep's first version, which had only rates
    report["chosen"] = max(cells, key=lambda key: min(cells[key]["won_back"].values()))
    _save(report, path)
    path.with_suffix(".md").write_text(markdown(report))


#: The first sweep's budget, mix, text and selection: its file keeps the plain name and predates these fields.
FIRST_SWEEP = {"tokens": 16384, "weights": EQUAL_WEIGHTS, "calib_source": None, "select": "500:600"}


def _setting(args: argparse.Namespace) -> dict:
    """What every cell of one results file shares: a recipe is only comparable with another at the same setting."""
    source = str(Path(args.calib_source).expanduser().resolve()) if args.calib_source else None
    return {"tokens": args.tokens, "weights": args.weights, "calib_source": source, "select": args.select}


def _stem(setting: dict) -> str:
    """The first sweep's file name for its setting; any other budget, mix or text gets a file named by its budget
    (and a different selection or text under the same budget is refused by ``--merge``'s check)."""
    return STEM if setting == FIRST_SWEEP else f"{STEM}-{setting['tokens']}"


@dataclass(frozen=True)
class Recipe:
    """One cell's healing settings that the sweep varies; the rest are ``bench_heal.py``'s."""

    lr: float = DEFAULT_LR["full"]
    temperature: float = constants.DEFAULT_HEAL_TEMPERATURE
    kd_weight: float = constants.DEFAULT_KD_WEIGHT
    hidden_weight: float = 0.0
    seed: int = constants.DEFAULT_SEED
    grad_accum: int = 1

    FIELDS = {
        "lr": "lr",
        "T": "temperature",
        "kd": "kd_weight",
        "h": "hidden_weight",
        "seed": "seed",
        "accum": "grad_accum",
    }
    INTEGERS = ("seed", "grad_accum")

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """``'kd=1,T=1'`` -> Recipe(kd_weight=1.0, temperature=1.0)."""
        values = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            if name.strip() not in cls.FIELDS or not value:
                raise SystemExit(f"recipe field {part!r}: use {', '.join(f'{n}=X' for n in cls.FIELDS)}")
            field = cls.FIELDS[name.strip()]
            values[field] = int(value) if field in cls.INTEGERS else float(value)
        return cls(**values)

    @classmethod
    def of(cls, cell: dict) -> Recipe:
        """The recipe a result cell ran with (cells from before the seed field ran at the default seed)."""
        return cls(**{name: cell.get(name, getattr(cls, name)) for name in cls.FIELDS.values()})

    @property
    def default_loss(self) -> bool:
        """Only the rate differs from ``hfprune heal``'s defaults."""
        return (self.temperature, self.kd_weight, self.hidden_weight) == (Recipe.temperature, Recipe.kd_weight, 0.0)

    @property
    def key(self) -> str:
        """The rate alone at the default loss (the keys of the sweep's first version), else every loss field; a
        seed or an accumulation other than the default is added after either."""
        extra = f" seed={self.seed}" if self.seed != Recipe.seed else ""
        extra += f" accum={self.grad_accum}" if self.grad_accum != Recipe.grad_accum else ""
        if self.default_loss:
            return f"{self.lr:g}{extra}"
        fields = [(short, name) for short, name in self.FIELDS.items() if name not in self.INTEGERS]
        return " ".join(f"{short}={getattr(self, name):g}" for short, name in fields) + extra


def _lines(lang: str, start: int, stop: int) -> str:
    from hfprune.evaluation.perplexity import load_flores

    lines = load_flores(lang).splitlines()[start:stop]
    if len(lines) < stop - start:
        raise SystemExit(f"FLORES devtest {lang} has {len(lines) + start} lines; --select {start}:{stop} is too far")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    dense, pruned = report["dense"], report["pruned"]
    lines = [
        f"# Healing learning rate and loss: {report['student']}, {report['tokens']:,} tokens (Gemma 3 270M)",
        "",
        "Commands: "
        + "; ".join(f"`{command}`" for command in report["commands"])
        + f". Device: {report['device']} ({report['threads']} threads, torch {report['torch']}). Bits per byte on "
        f"FLORES-200 devtest lines {report['select']} (the selection text: disjoint from the first 100 lines "
        "that `bench_heal.py` reports). T: distillation temperature; KD share: the KD term's share of the loss (the "
        "rest next-token cross-entropy); hidden: the hidden-state term's weight. Chosen: the recipe whose worst "
        "kept language won back the most. Accum: forwards per optimizer step, each of "
        f"{report.get('batch_size', 4)} samples of {report.get('seqlen', 256)} tokens. Healing mix "
        f"{report.get('weights', EQUAL_WEIGHTS)} on "
        + (f"the text folder `{Path(report['calib_source']).name}`" if report.get("calib_source") else "hfprune's text")
        + ".",
        "",
        "| lr | T | KD share | hidden | seed | accum | "
        + " | ".join(KEPT)
        + " | won back | worst | loss start → end | s per 1M tokens |",
        "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(KEPT) + "---|---:|---|---:|",
        "| dense | | | | | | " + " | ".join(f"{dense[lang]:.4f}" for lang in KEPT) + " | | | | |",
        "| not healed | | | | | | " + " | ".join(f"{pruned[lang]:.4f}" for lang in KEPT) + " | | | | |",
    ]
    for key, cell in sorted(report["cells"].items(), key=_order):
        bpb, won = cell["bits_per_byte"], cell["won_back"]
        chosen = " (chosen)" if key == report.get("chosen") else ""
        lines.append(
            f"| {cell['lr']:g}{chosen} | {cell['temperature']:g} | {cell['kd_weight']:g} | {cell['hidden_weight']:g} | "
            f"{Recipe.of(cell).seed} | {Recipe.of(cell).grad_accum} | "
            + " | ".join(f"{bpb[lang]:.4f}" for lang in KEPT)
            + " | "
            + ", ".join(f"{lang} {won[lang]:.0%}" for lang in KEPT)
            + f" | {min(won.values()):.0%} | {_loss(cell)} | {cell['seconds_per_million_tokens']} |"
        )
    if report.get("note"):
        lines += ["", f"Note: {report['note']}"]
    return "\n".join(lines) + "\n"


def _order(item: tuple[str, dict]) -> tuple:
    """The rate sweep first (by rate), then the loss recipes (by temperature, KD share, hidden weight)."""
    recipe = Recipe.of(item[1])
    return (
        not recipe.default_loss,
        recipe.temperature,
        recipe.kd_weight,
        recipe.hidden_weight,
        recipe.grad_accum,
        recipe.lr,
        recipe.seed,
    )


def _loss(cell: dict) -> str:
    """The training loss (KD + LM) of the first and the last step."""
    start, end = (cell.get(key) or {} for key in ("loss_start", "loss_end"))
    return f"{start['loss']:.3f} → {end['loss']:.3f}" if "loss" in start and "loss" in end else ""


if __name__ == "__main__":
    main()
