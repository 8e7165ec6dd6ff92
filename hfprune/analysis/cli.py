"""``hfprune sweep`` and ``hfprune analyze``: argument parsing only; the work is in ``sweep`` and ``analyze``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import HfpruneError
from ..pruning.profiles import add_profile_arguments
from ..pruning.registry import available, cli_options


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _sparsities(values: list[str]) -> list[float]:
    out = []
    for value in values:
        for part in _comma_list(value):
            try:
                out.append(float(part))
            except ValueError:
                raise HfpruneError(f"--sparsity '{part}' is not a number; write e.g. --sparsity 0.5 --sparsity 0.6") from None
    return out


# --- sweep ------------------------------------------------------------------------------------------
def add_sweep_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep",
        help="grid of methods x sparsities x calibration mixes, each evaluated per language (FLORES perplexity)",
        description="Prune MODEL once per cell of the grid and write sweep.json, sweep.md and heatmaps to --out.",
    )
    p.add_argument("model", metavar="MODEL", help="Hub repo id or local model folder")
    p.add_argument("--methods", required=True, help="comma-separated methods, e.g. wanda,mwanda")
    p.add_argument("--sparsity", action="append", default=None, help="sparsity, repeatable or comma-separated (default 0.5)")
    p.add_argument("--calib", action="append", required=True, help="a calibration mix LANG:N,...; repeat for each row of the grid")
    p.add_argument("--eval-langs", required=True, help="comma-separated FLORES languages to evaluate, e.g. en,sw,zh")
    p.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    p.add_argument("--structure", default="unstructured", help="'unstructured' or N:M")
    p.add_argument("--calib-source", default=None, help="calibration text folder or datasets id (default: the shared data)")
    p.add_argument("--seqlen", type=int, default=512, help="tokens per calibration sample (default 512)")
    p.add_argument("--seed", type=int, default=0, help="calibration sampling seed")
    p.add_argument("--eval-sentences", type=int, default=None, help="first N FLORES sentences per language (default all)")
    p.add_argument("--context-length", type=int, default=512, help="perplexity window in tokens (default 512)")
    p.add_argument("--batch-size", type=int, default=8, help="samples / windows per forward (default 8)")
    p.add_argument("--device", default="cpu", help="compute device (default cpu)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype")
    p.add_argument("--no-plots", action="store_true", help="skip the heatmap PNGs")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true", help="print sweep.json instead of the table")
    add_profile_arguments(p)
    group = p.add_argument_group("method options (applied to every method that has them)")
    for method_name, field in cli_options():
        group.add_argument(field.metadata["flag"], dest=f"m_{field.name}", type=type(field.default), default=None,
                           help=f"[{method_name}] {field.metadata.get('help', '')} (default {field.default})")
    p.set_defaults(handler=run_sweep_command)
    return p


def method_params(methods: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each method's options from the ``m_*`` flags; a flag no chosen method takes is an error."""
    given = {k[2:]: v for k, v in vars(args).items() if k.startswith("m_") and v is not None}
    registry = available()
    unknown = [m for m in methods if m not in registry]
    if unknown:
        raise HfpruneError(f"unknown method(s) {', '.join(unknown)}; available: {', '.join(registry)}")
    fields = {m: set(getattr(registry[m], "__dataclass_fields__", {})) for m in methods}
    stray = sorted(k for k in given if not any(k in f for f in fields.values()))
    if stray:
        raise HfpruneError(f"option(s) {', '.join('--' + s.replace('_', '-') for s in stray)} apply to none of --methods {','.join(methods)}")
    return {m: {k: v for k, v in given.items() if k in fields[m]} for m in methods}


def run_sweep_command(args: argparse.Namespace) -> int:
    from ..models import load_model
    from ..output import check_output
    from .sweep import SweepSpec, run_sweep
    from .sweep_report import markdown_table, write_sweep

    methods = _comma_list(args.methods)
    spec = SweepSpec(
        methods=methods, sparsities=_sparsities(args.sparsity or ["0.5"]), mixes=args.calib,
        eval_langs=_comma_list(args.eval_langs), structure=args.structure, profile=args.sparsity_profile,
        profile_delta=args.owl_lambda, owl_m=args.owl_m, method_params=method_params(methods, args),
        seqlen=args.seqlen, seed=args.seed, eval_sentences=args.eval_sentences,
        context_length=args.context_length, batch_size=args.batch_size, device=args.device,
    )
    spec.check()
    out = check_output(args.out, args.overwrite)
    loaded = load_model(args.model, dtype=args.dtype)
    partial = lambda result: write_sweep(result, out, plots_too=False)  # noqa: E731  (progress survives a crash)
    result = run_sweep(loaded.model, loaded.tokenizer, spec, calib_source=args.calib_source, on_cell=partial)
    write_sweep(result, out, plots_too=not args.no_plots)
    print(json.dumps(result.to_dict(), indent=2) if args.json else markdown_table(result))
    return 0


# --- analyze ----------------------------------------------------------------------------------------
def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze",
        help="mask overlap between pruned models and the fate of language-specific neurons",
        description="Compare pruned FOLDERs (and their dense base): IoU per layer and module type; LAPE neurons.",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="pruned folders (hfprune prune --out); one may be the dense base")
    p.add_argument("--base", default=None, help="the dense base model folder (enables the neuron analysis)")
    p.add_argument("--out", required=True, help="output folder for analysis.json, analysis.md and PNGs")
    p.add_argument("--langs", default=None, help="languages for the neuron analysis (default: the models' calibration languages)")
    p.add_argument("--samples", type=int, default=8, help="calibration samples per language for firing rates (default 8)")
    p.add_argument("--seqlen", type=int, default=256, help="tokens per sample (default 256)")
    p.add_argument("--calib-source", default=None, help="text folder for the neuron analysis (default: the shared calibration data)")
    p.add_argument("--top-rate", type=float, default=0.01, help="LAPE: share of neurons (lowest entropy) called language-specific (default 0.01)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true", help="print analysis.json instead of the Markdown")
    p.set_defaults(handler=run_analyze_command)
    return p


def run_analyze_command(args: argparse.Namespace) -> int:
    from ..output import check_output
    from .analyze import NeuronSpec, analyze
    from .analyze_report import markdown, write_analysis

    out = check_output(args.out, args.overwrite)
    spec = NeuronSpec(langs=_comma_list(args.langs) if args.langs else None, samples=args.samples, seqlen=args.seqlen,
                      top_rate=args.top_rate, calib_source=args.calib_source)
    report = analyze(args.folders, base=args.base, neuron_spec=spec)
    write_analysis(report, Path(out))
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0
