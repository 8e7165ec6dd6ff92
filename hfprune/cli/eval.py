"""``hfprune eval``: load the model(s), evaluate per language, print a table (or JSON), write results and a plot."""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..evaluation.cache import ResultCache
from ..evaluation.plot import plot_comparison, plot_result
from ..evaluation.report import print_report, source_lines
from ..evaluation.results import Comparison, EvalResult, is_results_file
from ..evaluation.runner import compare, evaluate_model
from ..evaluation.tasks import TASK_NAMES
from ..io import check_output_file, is_hfprune_plot, portable_path, write_record
from ..models import input_device, load_model, release, weights_sha256
from ..system import resolve_device
from . import options
from .options import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a (pruned) model per language, optionally against its dense baseline",
        description="Per-language perplexity (token and bits per byte) and zero-shot accuracy "
        "(lm-evaluation-harness prompts), dense vs pruned.",
    )
    parser.add_argument("model", help="the model to evaluate (the pruned one): local folder or Hub id")
    parser.add_argument("--baseline", help="the dense model to compare with: local folder or Hub id")
    parser.add_argument("--langs", required=True, help="comma-separated ISO 639-1 codes, e.g. en,de,sw,zh")
    parser.add_argument("--tasks", default="ppl", help=f"comma-separated, or 'all' (known: {','.join(TASK_NAMES)})")
    parser.add_argument("--out", type=Path, help="write the results JSON here (and the plot beside it)")
    parser.add_argument("--plot", type=Path, help="write the PNG plot here (default: --out with .png)")
    parser.add_argument(
        "--eval-source",
        "--data",
        dest="data",
        type=Path,
        help="data folder (flores/, xcopa/ ...) read instead of the defaults: $HFPRUNE_DATA_DIR, then the data "
        "shipped with hfprune, then the Hub when online",
    )
    hub = parser.add_mutually_exclusive_group()
    hub.add_argument(
        "--hub-data",
        dest="hub_data",
        action="store_const",
        const=True,
        default=None,
        help="read what the data folders lack from the Hub with `datasets` even when HF_HUB_OFFLINE is set "
        "(from the datasets cache); the default asks the Hub whenever online",
    )
    hub.add_argument(
        "--no-hub-data",
        dest="hub_data",
        action="store_const",
        const=False,
        help="never ask the Hub: a language no data folder has is skipped",
    )
    parser.add_argument(
        "--ppl-source", default="flores", help="flores, a folder of {lang}.txt, or hf:ID[:CONFIG[:SPLIT[:COLUMN]]]"
    )
    options.add_eval_options(parser, batch_flags=("--batch-size", "--eval-batch-size"))
    parser.add_argument("--stride", type=positive_int, help="new tokens scored per window (default context length - 1)")
    parser.add_argument("--limit", type=positive_int, help="at most N items (sentences for ppl) per language and task")
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:1 ... (default: cpu; under a launcher cuda is each rank's GPU)"
    )
    options.add_placement_options(parser)
    parser.add_argument("--no-cache", action="store_true", help="recompute even what is cached")
    parser.add_argument("--cache-dir", type=Path, help="where cached results live (default: hfprune's cache)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out (and --plot)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Evaluate ``args.model`` (and ``args.baseline``); print a table or JSON; write JSON and PNG."""
    if args.device:
        resolve_device(args.device)
    plot_path = args.plot or (args.out.with_suffix(".png") if args.out else None)

    def check() -> None:  # rank 0 writes, so rank 0 checks (another machine's ranks may not see the path)
        if args.out:
            check_output_file(args.out, args.overwrite, ours=is_results_file)
        if plot_path:
            check_output_file(plot_path, args.overwrite, ours=is_hfprune_plot)

    distributed.current().agree(check, "checking the output files")
    pruned = _evaluate_path(args.model, args)
    outcome: EvalResult | Comparison = compare(pruned, _evaluate_path(args.baseline, args)) if args.baseline else pruned
    payload = outcome.to_dict()

    def write() -> None:  # rank 0 writes; the other ranks (same numbers) print nothing
        if args.out:
            write_record(args.out, payload)
        if plot_path:
            (plot_comparison if args.baseline else plot_result)(outcome, plot_path)

    distributed.current().agree(write, "writing the results (rank 0)")
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print_report(outcome)
        for line in source_lines(pruned):
            print(line)
        for label, path in (("results", args.out), ("plot", plot_path)):
            if path:
                print(f"{label}: {path}")
    return 0


def _evaluate_path(path: str, args: argparse.Namespace) -> EvalResult:
    """Load one model, evaluate it, and free it before the next one is loaded."""
    placement = options.placement(args)
    device = distributed.rank_device(torch.device(args.device)) if args.device else None
    loaded = load_model(path, device=device, require_tokenizer=True, placement=placement)
    if placement is not None:
        device = input_device(loaded.model)  # accelerate's hooks move each module's inputs from there
    try:
        result = evaluate_model(
            loaded.model,
            loaded.tokenizer,
            langs=args.langs,
            tasks=args.tasks,
            data_dir=args.data,
            ppl_source=args.ppl_source,
            context_length=args.context_length,
            stride=args.stride,
            batch_size=args.eval_batch_size,
            limit=args.limit,
            device=device,
            cache=False if args.no_cache else ResultCache(args.cache_dir) if args.cache_dir else True,
            hub_data=args.hub_data,
            progress=not args.json,
            model_name=portable_path(str(path)),
        )
        if loaded.folder is not None:  # so a card can tell these results are of the weights it describes
            result.model["weights_sha256"] = weights_sha256(loaded.folder)
        return result
    finally:
        release(loaded.model)
        del loaded
        gc.collect()
