"""``hfprune sweep``: methods x sparsities x calibration mixes, each cell evaluated per language (FLORES perplexity)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import distributed
from ..analysis.flores_eval import flores_perplexities
from ..analysis.sweep import SweepSpec, run_sweep
from ..analysis.sweep_report import SWEEP_FILE, markdown_table, write_sweep
from ..calibration import Mix
from ..errors import InvalidOptionError, InvalidStructuredSpecError
from ..io import check_output
from ..models import load_model
from ..pruning.structured import is_structured
from ..vocab import trim_vocab
from . import options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="grid of methods x sparsities x calibration mixes, each evaluated per language (FLORES perplexity)",
        description="Prune MODEL once per cell of the grid and write sweep.json, sweep.md and heatmaps to --out.",
    )
    options.add_model_options(parser)
    parser.add_argument(
        "--eval-langs", required=True, help="comma-separated FLORES languages to evaluate, e.g. en,sw,zh"
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    options.add_pruning_options(parser, grid=True)
    options.add_placement_options(parser)
    options.add_output_options(parser)
    options.add_heal_after_pruning_options(parser)
    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "--eval-sentences",
        type=options.positive_int,
        default=None,
        help="first N FLORES sentences per language (default all)",
    )
    options.add_eval_options(group)
    parser.add_argument("--no-plots", action="store_true", help="skip the heatmap PNGs")
    parser.add_argument("--json", action="store_true", help="print sweep.json instead of the table")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.stream:
        raise InvalidOptionError(
            "a sweep evaluates every cell with the whole model in memory, so --stream cannot bound its memory; "
            "prune each cell with `hfprune prune --stream` instead"
        )
    if options.placement(args) is not None:
        raise InvalidOptionError(
            "a sweep restores the dense weights in memory between cells, so it cannot spread the model with "
            "--device-map; prune each cell with `hfprune prune --device-map ...` instead"
        )
    methods = options.comma_list(args.methods)
    structured = is_structured(args.structure)
    if structured and args.sparsity:
        raise InvalidStructuredSpecError(
            f"--sparsity contradicts --structure {args.structure}: structured pruning removes whole neurons, heads or "
            "blocks and sets no zeros; leave --sparsity out"
        )
    spec = SweepSpec(
        methods=methods,
        sparsities=[0.0] if structured else options.sparsities(args.sparsity),
        mixes=args.calib,
        eval_langs=options.comma_list(args.eval_langs),
        structure=args.structure,
        profile=args.sparsity_profile,
        profile_delta=args.owl_lambda,
        owl_m=args.owl_m,
        method_params=options.method_params(args, methods, grid=True),
        seqlen=args.seqlen,
        seed=args.seed,
        eval_sentences=args.eval_sentences,
        context_length=args.context_length,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        device=args.device,
        pipeline=args.pipeline,
        offload=args.offload,
        lang_agg=args.lang_agg,
        refit=not args.no_refit,
    )
    group = distributed.current()
    spec.heal = options.heal_after_pruning(args, calib=args.calib[0] if args.calib else None)
    spec.heal_calib = args.heal_calib
    if spec.heal is not None and group.size > 1:
        raise InvalidOptionError(
            "a sweep with --heal runs in one process (each cell trains a copy of the model); start it without "
            "torchrun or accelerate launch"
        )
    spec.check()
    vocab = options.vocab_settings(args)
    out = group.agree(
        lambda: check_output(args.out, args.overwrite, marker=SWEEP_FILE, whole=False, reads=args.model),
        "checking the output folder",
    )
    loaded = load_model(args.model, revision=args.revision, trust_remote_code=args.trust_remote_code, dtype=args.dtype)
    tokenizer, trimmed = loaded.tokenizer, {}
    if vocab is not None:  # trimmed once, before the grid: every cell is trimmed and pruned
        untrimmed = flores_perplexities(
            loaded.model,
            tokenizer,
            spec.eval_langs,
            sentences=spec.eval_sentences,
            context_length=spec.context_length,
            batch_size=spec.eval_batch_size,
        )
        langs = vocab.langs or list(dict.fromkeys(lang for mix in spec.mixes for lang in Mix.parse(mix).languages))
        done = trim_vocab(loaded.model, tokenizer, vocab.with_langs(langs), source=options.source_spec(args))
        tokenizer, trimmed = done.tokenizer, {"record": done.record, "dense_untrimmed": untrimmed}

    def partial(result: Any) -> None:  # progress survives a crash (rank 0 writes; it sees its own group's cells)
        result.vocab = trimmed
        write_sweep(result, out, plots_too=False)

    result = run_sweep(loaded.model, tokenizer, spec, calib_source=options.source_spec(args), on_cell=partial)
    result.vocab = trimmed
    group.agree(lambda: write_sweep(result, out, plots_too=not args.no_plots), "writing the sweep (rank 0)")
    print(json.dumps(result.to_dict(), indent=2) if args.json else markdown_table(result))
    return 0
