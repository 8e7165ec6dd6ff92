"""``hfprune run``: pull -> prune -> eval -> card -> push, one folder, resumable.

Each step hashes its inputs (options, the base model's commit, the previous step's output) and records the
hash with its outputs in the folder's ledger (:mod:`hfprune.workflow.ledger`); a re-run skips a step whose
inputs and outputs are unchanged. The output folder is the model folder that gets published; the ledger is a
dot-file and is never uploaded.

Under a launcher (``torchrun``, ``accelerate launch``) every rank runs the job: pruning and evaluation are shared
by the ranks (each its part of the batches), rank 0 alone reads and writes the ledger, the folder, the card
and the push, and decides for all which steps to skip. The ranks read the pruned folder rank 0 wrote, so on
several machines ``--out`` must be on a filesystem they all see.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..api import PruneSettings, prune_pretrained
from ..card import default_template, write_card
from ..constants import (
    CARD_FILE,
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_EVAL_BATCH_SIZE,
    DEFAULT_MAX_SHARD_SIZE,
    EXPORT_RECORD,
    LEDGER_FILE,
    METADATA_FILE,
    OPENVINO_SUBFOLDER,
    PLOT_FILE,
    RESULTS_FILE,
    VERSION,
)
from ..errors import OutputExistsError
from ..evaluation.plot import plot_comparison
from ..evaluation.runner import check_evaluation_data, compare, evaluate_model
from ..export import ExportSettings, export_openvino
from ..hub.local_push import push_to_local_hub, verify_local_hub
from ..hub.manifest import local_manifest
from ..hub.push import push_folder, verify_published
from ..io import (
    check_not_over_model,
    check_output,
    check_writable,
    portable_path,
    sha256_file,
    write_record,
)
from ..models import ModelSource, input_device, load_model, release, weights_sha256
from ..models.pull import pull
from .ledger import Ledger, input_key

#: Where a run says what it does, one line at a time (stderr by default).
Log = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _silent(line: str) -> None:
    """Ranks other than 0 say nothing: rank 0 speaks for the run."""


@dataclass
class RunOptions:
    """Everything ``hfprune run`` does, as data (the CLI fills it from its flags)."""

    #: the base model and how it loads (its placement is used for pruning and evaluation)
    source: ModelSource
    out: Path
    #: what to prune and how: the same settings as ``hfprune prune``
    prune: PruneSettings = field(default_factory=PruneSettings)
    max_shard_size: str = DEFAULT_MAX_SHARD_SIZE
    stream: bool = False
    eval_langs: list[str] = field(default_factory=list)
    eval_tasks: str = "ppl"
    eval_limit: int | None = None
    eval_source: Path | None = None  # a data folder read instead of the default order of sources
    context_length: int = DEFAULT_CONTEXT_LENGTH
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE
    push_to: str | None = None
    local_hub: Path | None = None  # publish into this folder (Hub mirror layout) instead of the Hub
    private: bool = False
    create_pr: bool = False
    push_revision: str | None = None
    license: str | None = None
    #: export the pruned model into ``out/openvino`` after evaluation (published with it); ``None``: no export
    export: ExportSettings | None = None
    command: list[str] = field(default_factory=list)
    #: replace an existing ``out`` that hfprune wrote but that is not this run's folder
    overwrite: bool = False


@dataclass
class RunOutcome:
    """What a run produced and which steps it skipped."""

    folder: Path
    card: Path
    results: Path | None
    ran: list[str]
    skipped: list[str]
    push: dict[str, Any] | None = None


def run_job(options: RunOptions, log: Log = _to_stderr) -> RunOutcome:
    """Run every step of ``options`` that is not already done; see the module docstring.

    Before any work: ``--out`` must not be, contain or lie inside a local model folder; an existing ``--out``
    is resumed when it holds an earlier run of the same job (its ledger says so: same model, revision and
    pruning settings), replaced with ``--overwrite`` when hfprune wrote it (and nothing else is in it), and
    refused otherwise.

    Under a launcher every rank pulls, prunes and evaluates (sharing the work); rank 0 alone reads and writes
    the ledger, the card and the Hub, and the other ranks learn its answers (:meth:`Group.agree`).

    Raises:
        Whatever the steps raise, all :class:`~hfprune.errors.HfpruneError` subclasses for what a user can fix:
        Hub, pruning, calibration, evaluation and publishing errors.
    """
    out = Path(options.out).expanduser()
    group = distributed.current()
    group.agree(lambda: _check_out(options, out), "checking the output folder")
    if options.eval_langs:  # before minutes of pruning: every language must have a source
        check_evaluation_data(options.eval_langs, options.eval_tasks, data_dir=options.eval_source)
    ledger = Ledger(out)
    ledger.job = _job(options)
    ran: list[str] = []
    skipped: list[str] = []
    if not group.is_main:
        log = _silent

    def step(
        name: str,
        key: str,
        action: Callable[[], tuple[list[str], dict[str, Any]]],
        still_valid: Callable[[dict[str, Any]], bool] = lambda result: True,
        shared: bool = False,
    ) -> dict[str, Any]:
        """Run ``action`` unless the ledger says it is done; ``shared``: every rank takes part, else rank 0."""

        def recorded() -> dict[str, Any] | None:
            return ledger.result(name) if ledger.is_done(name, key, out) and still_valid(ledger.result(name)) else None

        done = group.agree(recorded, f"[{name}] reading the ledger")
        if done is not None:
            skipped.append(name)
            log(f"[{name}] up to date, skipped")
            return done
        log(f"[{name}] running ...")
        files, result = action() if shared else group.agree(action, f"[{name}] on rank 0")
        group.agree(lambda: ledger.record(name, key, out, files, result), f"[{name}] recording it")
        ran.append(name)
        return result

    # The base is resolved to a commit on every run (one request; nothing is downloaded when it is cached), so
    # a branch that moved is noticed, and every later step uses that one commit. Every rank pulls its own copy
    # (ranks on other machines have other caches).
    resolved = _resolve_base(options)
    base = step("pull", input_key(_pull_inputs(options, resolved)), lambda: ([], resolved), shared=True)
    if base.get("commit") == resolved.get("commit"):
        base = {**base, "folder": resolved["folder"]}  # this rank's own copy of that commit (rank 0 recorded its)
    log(f"[pull] {_describe_base(options, base)}")
    prune_key = input_key({"base": _base_identity(base), **_prune_inputs(options)})
    # prune replaces the folder atomically (ledger file included); the in-memory ledger is saved again after it.
    step("prune", prune_key, lambda: _prune(options, base), shared=True)
    pruned_id = group.agree(lambda: sha256_file(out / METADATA_FILE), "[prune] hashing")
    results = None
    eval_id = None
    if options.eval_langs:
        eval_key = input_key({"pruned": pruned_id, **_eval_inputs(options)})
        step("eval", eval_key, lambda: ([RESULTS_FILE], _evaluate(options, Path(base["folder"]))), shared=True)
        results = out / RESULTS_FILE
        eval_id = group.agree(lambda: sha256_file(results), "[eval] hashing")
    export_id = None
    if options.export is not None:
        export_key = input_key({"pruned": pruned_id, **options.export.to_dict(), "hfprune": VERSION})
        step("export", export_key, lambda: _export(options))
        export_id = group.agree(lambda: sha256_file(out / OPENVINO_SUBFOLDER / EXPORT_RECORD), "[export] hashing")
    card_inputs = {
        "pruned": pruned_id,
        "eval": eval_id,
        "export": export_id,
        "template": sha256_file(default_template()),
        "repo_id": options.push_to,
        "license": options.license,
        "hfprune": VERSION,
    }
    step("card", input_key(card_inputs), lambda: ([CARD_FILE], _card(options, results)))
    pushed = None
    if options.push_to:
        push_inputs = {**_push_inputs(options), "files": group.agree(lambda: _folder_digest(out), "[push] hashing")}
        pushed = step(
            "push",
            input_key(push_inputs),
            lambda: ([], _push(options)),
            lambda done: _still_published(options, done, log),
        )
        log(f"[push] {pushed.get('url')} (commit {str(pushed.get('commit'))[:12]}, verified)")
        for warning in pushed.get("warnings", []):
            log(f"[push] warning: {warning}")
    return RunOutcome(folder=out, card=out / CARD_FILE, results=results, ran=ran, skipped=skipped, push=pushed)


# --- before any work --------------------------------------------------------------------------------------
def _check_out(options: RunOptions, out: Path) -> None:
    check_not_over_model(options.source.model, out)
    if (out / LEDGER_FILE).is_file():  # this command's own folder: resume it if it is the same job
        _check_same_job(options, out)
        check_writable(out)
        return
    check_output(out, options.overwrite)


def _job(options: RunOptions) -> dict[str, Any]:
    """What makes two runs the same job: the model, its revision and how it is pruned (not evaluation or
    publishing options, which a re-run may change; not the commit a branch points at, which may move)."""
    source = options.source
    model = str(source.local_folder) if source.local_folder else source.model
    inputs = {"model": model, "revision": source.revision, "dtype": source.dtype, **options.prune.describe()}
    return {"key": input_key(inputs), "model": portable_path(model), "method": options.prune.method}


def _check_same_job(options: RunOptions, out: Path) -> None:
    """Resume only the job the folder holds: another job's folder is replaced with ``--overwrite`` alone."""
    recorded = Ledger(out).job
    if not recorded or recorded.get("key") == _job(options)["key"]:
        return
    if not options.overwrite:
        raise OutputExistsError(
            f"{out} holds an earlier hfprune run of another job ({recorded.get('method')} on "
            f"{recorded.get('model')}, other settings); pass --overwrite to replace it, or choose another --out"
        )
    check_output(out, overwrite=True)  # hfprune's own files only: a user's file in it is refused, never deleted


# --- the steps ------------------------------------------------------------------------------------------
def _resolve_base(options: RunOptions) -> dict[str, Any]:
    """The base model as it is now: a Hub id resolved to the commit its revision points at, or a local folder."""
    local = options.source.local_folder
    if local is not None:
        return {"folder": str(local), "commit": None}
    folder = pull(options.source.model, revision=options.source.revision, token=options.source.token)
    return {"folder": str(folder), "commit": folder.name}


def _pull_inputs(options: RunOptions, resolved: dict[str, Any]) -> dict[str, Any]:
    local = options.source.local_folder
    if local is not None:  # a local base: its files' sizes and times stand in for a commit
        stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in local.iterdir() if p.is_file())
        return {"local": str(local), "files": stats}
    return {"model": options.source.model, "revision": options.source.revision, "commit": resolved["commit"]}


def _base_identity(base: dict[str, Any]) -> dict[str, Any]:
    return {"commit": base["commit"]} if base.get("commit") else {"folder": base["folder"]}


def _describe_base(options: RunOptions, base: dict[str, Any]) -> str:
    if not base.get("commit"):
        return f"local folder {options.source.model}"
    return f"{options.source.model}@{options.source.revision or 'main'} is commit {base['commit'][:12]}"


def _prune_inputs(options: RunOptions) -> dict[str, Any]:
    # No placement: where the weights wait between forwards changes no weight (tested), so it never re-prunes.
    loading = {"dtype": options.source.dtype, "stream": options.stream, "max_shard_size": options.max_shard_size}
    return {**options.prune.describe(), **loading, "hfprune": VERSION}


def _prune(options: RunOptions, base: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Prune the resolved commit into the output folder (replacing what an earlier run with other inputs left
    there); the ledger then records the hash of every file written, weights included."""
    pinned = options.source.at(base["commit"]) if base.get("commit") else replace(options.source, model=base["folder"])
    result = prune_pretrained(
        pinned,
        options.out,
        options.prune,
        overwrite=True,
        max_shard_size=options.max_shard_size,
        stream=options.stream,
        command=options.command or None,
    )
    if not distributed.current().is_main:  # rank 0 wrote the folder (and records it); it may be on another machine
        return [], {"achieved_sparsity": result.sparsity}
    written = sorted(path for path in local_manifest(options.out) if path not in (CARD_FILE, RESULTS_FILE, PLOT_FILE))
    return written, {"achieved_sparsity": result.sparsity}


def _eval_inputs(options: RunOptions) -> dict[str, Any]:
    return {
        "langs": options.eval_langs,
        "tasks": options.eval_tasks,
        "limit": options.eval_limit,
        "context_length": options.context_length,
        "batch_size": options.eval_batch_size,
        **({"eval_source": str(options.eval_source.resolve())} if options.eval_source else {}),
    }


def _evaluate(options: RunOptions, base_folder: Path) -> dict[str, Any]:
    """Evaluate the dense base and the pruned model on the same data; write the results JSON and the plot."""
    requested = options.prune.device if options.prune.device not in (None, "auto") else None
    device = distributed.rank_device(torch.device(requested)) if requested else None
    settings = dict(
        langs=options.eval_langs,
        tasks=options.eval_tasks,
        limit=options.eval_limit,
        context_length=options.context_length,
        batch_size=options.eval_batch_size,
        data_dir=options.eval_source,
        progress=False,
    )
    evaluations = {}
    for role, folder in (("dense", base_folder), ("pruned", options.out)):
        placement = options.source.placement
        loaded = load_model(str(folder), device=device, require_tokenizer=True, placement=placement)
        name = role if role == "pruned" else portable_path(options.source.model)
        where = input_device(loaded.model) if placement is not None else device
        evaluations[role] = evaluate_model(loaded.model, loaded.tokenizer, model_name=name, device=where, **settings)
        evaluations[role].model["weights_sha256"] = weights_sha256(Path(folder))
        release(loaded.model)
        del loaded
        gc.collect()
    comparison = compare(evaluations["pruned"], evaluations["dense"])

    def write() -> None:
        write_record(options.out / RESULTS_FILE, comparison.to_dict())
        plot_comparison(comparison, options.out / PLOT_FILE)

    distributed.current().agree(write, "[eval] writing the results (rank 0)")
    return {"rows": len(comparison.rows)}


def _export(options: RunOptions) -> tuple[list[str], dict[str, Any]]:
    """Export the pruned folder into its ``openvino/`` subfolder (replacing an earlier run's export)."""
    assert options.export is not None
    result = export_openvino(
        options.out, options.out / OPENVINO_SUBFOLDER, options.export, overwrite=True, command=options.command or None
    )
    prefix = f"{OPENVINO_SUBFOLDER}/"
    written = sorted(path for path in local_manifest(options.out) if path.startswith(prefix))
    sizes = result.record["sizes"]
    return written, {"ir_bytes": sizes["ir_bytes"], "passed": result.record["verification"]["passed"]}


def _card(options: RunOptions, results: Path | None) -> dict[str, Any]:
    # The run's own folder: its ledger recorded the card it wrote, so the card step rewrites it whatever it holds.
    card = write_card(options.out, results=results, repo_id=options.push_to, license=options.license, overwrite=True)
    return {"card": str(card)}


def _push_inputs(options: RunOptions) -> dict[str, Any]:
    names = ("push_to", "private", "create_pr", "push_revision")
    local = {"local_hub": str(Path(options.local_hub).resolve())} if options.local_hub else {}
    return {name: getattr(options, name) for name in names} | local


def _push(options: RunOptions) -> dict[str, Any]:
    assert options.push_to is not None
    if options.local_hub:
        pushed = push_to_local_hub(options.out, options.local_hub, options.push_to, revision=options.push_revision)
    else:
        pushed = push_folder(
            options.out,
            options.push_to,
            private=options.private,
            create_pr=options.create_pr,
            revision=options.push_revision,
        )
    return pushed.to_dict()


def _still_published(options: RunOptions, done: dict[str, Any], log: Log) -> bool:
    """Whether the recorded push is still what the repo holds: its branch points at that commit and the commit
    holds exactly the folder's files. Re-checked on every re-run, so a skipped push is a verified one."""
    assert options.push_to is not None
    if options.local_hub:
        problems = verify_local_hub(
            options.out, options.local_hub, options.push_to, done["commit"], done.get("revision")
        )
    else:
        problems = verify_published(options.out, options.push_to, done["commit"], done.get("revision"))
    if problems:
        log(f"[push] the published repo changed since the last run ({problems[0]}): publishing again")
        return False
    log(f"[push] re-checked: {options.push_to} still holds this folder at commit {done['commit'][:12]}")
    return True


def _folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every publishable file: a push is redone when any of them changed."""
    return {path: entry.sha256 or "" for path, entry in local_manifest(folder).items()}
