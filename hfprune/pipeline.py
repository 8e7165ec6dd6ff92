"""``hfprune run``: pull -> prune -> eval -> card -> push, one folder, resumable.

Each step hashes its inputs (options, the base model's commit, the previous step's output) and records the
hash with its outputs in the folder's ledger (:mod:`hfprune.run_ledger`); a re-run skips a step whose inputs
and outputs are unchanged. The output folder is the model folder that gets published; the ledger is a
dot-file and is never uploaded.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hfprune import __version__
from hfprune.api import METADATA_FILE, prune_pretrained
from hfprune.card import CARD_FILE, PLOT_FILE, RESULTS_FILE, default_template, write_card
from hfprune.hub import pull
from hfprune.run_ledger import Ledger, file_sha256, input_key

Report = Callable[[str], None]


@dataclass
class RunOptions:
    """Everything ``hfprune run`` does, as data (the CLI fills it from its flags)."""

    model: str
    out: Path
    method: str = "wanda"
    sparsity: float | None = 0.5
    structure: str = "unstructured"
    calib: str | None = None
    calib_source: str | None = None
    seqlen: int = 512
    seed: int = 0
    method_params: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None
    eval_langs: list[str] = field(default_factory=list)
    eval_tasks: str = "ppl"
    eval_limit: int | None = None
    context_length: int = 512
    push_to: str | None = None
    local_hub: Path | None = None  # publish into this folder (Hub mirror layout) instead of the Hub
    private: bool = False
    create_pr: bool = False
    push_revision: str | None = None
    license: str | None = None
    command: list[str] = field(default_factory=list)
    device: str | None = None


@dataclass
class RunOutcome:
    """What a run produced and which steps it skipped."""

    folder: Path
    card: Path
    results: Path | None
    ran: list[str]
    skipped: list[str]
    push: dict[str, Any] | None = None


def run_pipeline(options: RunOptions, report: Report = lambda line: print(line, file=sys.stderr)) -> RunOutcome:
    """Run every step of ``options`` that is not already done; see the module docstring.

    Raises:
        Whatever the steps raise: Hub errors (:mod:`hfprune.errors`), pruning and calibration errors,
        evaluation errors, push errors (:mod:`hfprune.publish.errors`).
    """
    out = Path(options.out)
    ledger = Ledger(out)
    ran: list[str] = []
    skipped: list[str] = []

    def step(name: str, key: str, action: Callable[[], tuple[list[str], dict[str, Any]]]) -> dict[str, Any]:
        if ledger.is_done(name, key, out):
            skipped.append(name)
            report(f"[{name}] up to date, skipped")
            return ledger.result(name)
        report(f"[{name}] running ...")
        files, result = action()
        ledger.record(name, key, out, files, result)
        ran.append(name)
        return result

    pulled = ledger.result("pull").get("folder")
    if not pulled or not Path(pulled).is_dir():
        ledger.steps.pop("pull", None)  # the Hub cache was cleared since: pull again
    base = step("pull", input_key(_pull_inputs(options)), lambda: ([], _pull(options)))
    prune_key = input_key({"base": base, **_prune_inputs(options)})
    # prune replaces the folder atomically (ledger file included); the in-memory ledger is saved again after it.
    step("prune", prune_key, lambda: ([METADATA_FILE], _prune(options, Path(base["folder"]))))
    pruned_id = file_sha256(out / METADATA_FILE)
    results = None
    eval_id = None
    if options.eval_langs:
        eval_key = input_key({"pruned": pruned_id, **_eval_inputs(options)})
        step("eval", eval_key, lambda: ([RESULTS_FILE], _evaluate(options, Path(base["folder"]))))
        results = out / RESULTS_FILE
        eval_id = file_sha256(results)
    card_inputs = {
        "pruned": pruned_id, "eval": eval_id, "template": file_sha256(default_template()),
        "repo_id": options.push_to, "license": options.license, "hfprune": __version__,
    }  # fmt: skip
    step("card", input_key(card_inputs), lambda: ([CARD_FILE], _card(options, results)))
    pushed = None
    if options.push_to:
        push_inputs = {**_push_inputs(options), "files": _folder_digest(out)}
        pushed = step("push", input_key(push_inputs), lambda: ([], _push(options)))
        report(f"[push] {pushed.get('url')} (commit {str(pushed.get('commit'))[:12]}, verified)")
        for warning in pushed.get("warnings", []):
            report(f"[push] warning: {warning}")
    return RunOutcome(folder=out, card=out / CARD_FILE, results=results, ran=ran, skipped=skipped, push=pushed)


# --- the steps ------------------------------------------------------------------------------------------
def _pull_inputs(options: RunOptions) -> dict[str, Any]:
    local = Path(options.model).expanduser()
    if local.is_dir():  # a local base: its files' sizes and times stand in for a commit
        stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in local.iterdir() if p.is_file())
        return {"local": str(local.resolve()), "files": stats}
    return {"model": options.model, "revision": options.revision}


def _pull(options: RunOptions) -> dict[str, Any]:
    local = Path(options.model).expanduser()
    if local.is_dir():
        return {"folder": str(local.resolve()), "commit": None}
    folder = pull(options.model, revision=options.revision)
    return {"folder": str(folder), "commit": folder.name}


def _prune_inputs(options: RunOptions) -> dict[str, Any]:
    names = ("method", "sparsity", "structure", "calib", "calib_source", "seqlen", "seed", "method_params")
    return {name: getattr(options, name) for name in names} | {"hfprune": __version__}


def _prune(options: RunOptions, base_folder: Path) -> dict[str, Any]:
    """Prune into the output folder, replacing what a previous run with other inputs left there."""
    result = prune_pretrained(
        options.model if not Path(options.model).expanduser().is_dir() else str(base_folder),
        options.out,
        revision=options.revision,
        overwrite=True,
        command=options.command or None,
        method=options.method,
        sparsity=options.sparsity,
        structure=options.structure,
        calibration=options.calib,
        calib_source=options.calib_source,
        seqlen=options.seqlen,
        seed=options.seed,
        device=options.device,
        **options.method_params,
    )
    return {"achieved_sparsity": result.sparsity}


def _eval_inputs(options: RunOptions) -> dict[str, Any]:
    return {"langs": options.eval_langs, "tasks": options.eval_tasks, "limit": options.eval_limit, "context_length": options.context_length}


def _evaluate(options: RunOptions, base_folder: Path) -> dict[str, Any]:
    """Evaluate the dense base and the pruned model on the same data; write the results JSON and the plot."""
    from hfprune.evaluation.cli import load_model
    from hfprune.evaluation.plot import plot_comparison
    from hfprune.evaluation.runner import compare, evaluate_model

    settings = dict(
        langs=options.eval_langs, tasks=options.eval_tasks, limit=options.eval_limit,
        context_length=options.context_length, device=options.device, progress=False,
    )  # fmt: skip
    evaluations = {}
    for role, folder in (("dense", base_folder), ("pruned", options.out)):
        model, tokenizer = load_model(str(folder), options.device)
        evaluations[role] = evaluate_model(model, tokenizer, model_name=role if role == "pruned" else options.model, **settings)
        del model
        gc.collect()
    comparison = compare(evaluations["pruned"], evaluations["dense"])
    results = options.out / RESULTS_FILE
    tmp = results.with_name(f".{RESULTS_FILE}.tmp")
    tmp.write_text(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(results)
    plot_comparison(comparison, options.out / PLOT_FILE)
    return {"rows": len(comparison.rows)}


def _card(options: RunOptions, results: Path | None) -> dict[str, Any]:
    card = write_card(options.out, results=results, repo_id=options.push_to, license=options.license)
    return {"card": str(card)}


def _push_inputs(options: RunOptions) -> dict[str, Any]:
    names = ("push_to", "private", "create_pr", "push_revision")
    local = {"local_hub": str(Path(options.local_hub).resolve())} if options.local_hub else {}
    return {name: getattr(options, name) for name in names} | local


def _push(options: RunOptions) -> dict[str, Any]:
    if options.local_hub:
        from hfprune.publish.local_push import push_to_local_hub

        pushed = push_to_local_hub(options.out, options.local_hub, options.push_to, revision=options.push_revision)
    else:
        from hfprune.publish.push import push_folder

        pushed = push_folder(
            options.out, options.push_to, private=options.private, create_pr=options.create_pr,
            revision=options.push_revision,
        )  # fmt: skip
    return pushed.to_dict()


def _folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every publishable file: a push is redone when any of them changed."""
    from hfprune.publish.manifest import local_manifest

    return {path: entry.sha256 or "" for path, entry in local_manifest(folder).items()}


def options_dict(options: RunOptions) -> dict[str, Any]:
    """The options as JSON-friendly data (for ``--json`` output)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
