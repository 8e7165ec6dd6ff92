"""``hfprune demo``: the whole pipeline on this machine, with no Hub access, in a few CPU minutes.

The project's small trained multilingual Llama is pruned by two methods side by side with the same
eight-language calibration mix from the shared data, each is evaluated per language against the dense
model, gets its card and plot, and is published to a local Hub-layout folder (one git repo per model, LFS
objects included, verified like a real push). It ends by printing where the cards are and the one command
that publishes the same folder to huggingface.co.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..api import PruneSettings
from ..constants import METADATA_FILE
from ..models.tiny import LANGUAGES, tiny_model_path
from ..pruning.methods import available
from .run import Log, RunOptions, RunOutcome, _to_stderr, run_job

#: Methods preferred as "the best multilingual method available", in order; the first registered one is used.
MULTILINGUAL_PREFERENCE: tuple[str, ...] = ("mwanda", "m-wanda", "owl", "ria", "sparsegpt")


@dataclass
class DemoOptions:
    out: Path = Path("hfprune-demo")
    methods: tuple[str, ...] = ()  # default: wanda and the best multilingual method available
    sparsity: float = 0.5
    samples_per_language: int = 8
    seqlen: int = 256
    eval_limit: int = 100
    namespace: str = "local"


def default_methods() -> tuple[str, ...]:
    """Wanda, and the first of :data:`MULTILINGUAL_PREFERENCE` that is registered."""
    registered = available()
    best = next((name for name in MULTILINGUAL_PREFERENCE if name in registered), "magnitude")
    return ("wanda", best)


def run_demo(options: DemoOptions, log: Log = _to_stderr) -> list[RunOutcome]:
    """Run the whole job for each method into ``out/<method>`` and publish into ``out/hub``."""
    log("[demo] the project's tiny multilingual model (trained once per machine, then cached) ...")
    base = tiny_model_path(progress=True)
    mix = ",".join(f"{lang}:{options.samples_per_language}" for lang in LANGUAGES)
    outcomes = []
    for method in options.methods or default_methods():
        repo_id = f"{options.namespace}/tiny-multilingual-{method}-{round(options.sparsity * 100)}"
        folder = options.out / method
        command = [
            "hfprune", "run", str(base), "--method", method, "--sparsity", str(options.sparsity), "--calib", mix,
            "--seqlen", str(options.seqlen), "--eval-langs", ",".join(LANGUAGES), "--eval-limit", str(options.eval_limit),
            "--context-length", str(options.seqlen), "--out", str(folder), "--push-to", repo_id,
            "--local-hub", str(options.out / "hub"),
        ]  # fmt: skip
        log(f"[demo] {method}: {' '.join(command)}")
        settings = PruneSettings(method=method, sparsity=options.sparsity, calibration=mix, seqlen=options.seqlen)
        run = RunOptions(
            model=str(base), out=folder, prune=settings, eval_langs=list(LANGUAGES), eval_limit=options.eval_limit,
            context_length=options.seqlen, push_to=repo_id, local_hub=options.out / "hub", command=command,
        )  # fmt: skip
        outcomes.append(run_job(run, log))
    return outcomes


def side_by_side(outcomes: list[RunOutcome]) -> list[str]:
    """Lines of a per-language table of perplexity change, one column per method."""
    import json

    columns: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        method = json.loads((outcome.folder / METADATA_FILE).read_text())["method"]
        data = json.loads(outcome.results.read_text()) if outcome.results else {"changes": []}
        columns[method] = {
            c["lang"]: c["relative"] for c in data["changes"] if c["task"] == "ppl" and c["metric"] == "ppl"
        }
    langs = list(dict.fromkeys(lang for column in columns.values() for lang in column))
    lines = ["perplexity change vs dense, per language:", "lang  " + "".join(f"{m:>12}" for m in columns)]
    for lang in langs:
        lines.append(f"{lang:<6}" + "".join(f"{columns[m].get(lang, float('nan')):>+12.1%}" for m in columns))
    return lines
