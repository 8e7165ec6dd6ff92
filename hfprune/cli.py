"""``hfprune`` command line: parse, call the library, print a table (or ``--json``). Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import HfpruneError
from .memory import return_large_buffers_promptly

Handler = Callable[[argparse.Namespace], int]


def _add_prune(sub: argparse._SubParsersAction) -> None:
    from .calibration import DEFAULT_SEQLEN
    from .pruning.registry import available, cli_options

    p = sub.add_parser(
        "prune",
        help="prune a model one-shot with a calibration-language mix",
        description="Prune MODEL (Hub id or local folder) and write the sparse checkpoint to --out.",
    )
    p.add_argument("model", metavar="MODEL", help="Hub repo id (owner/name) or a local model folder")
    p.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    p.add_argument("--method", default="wanda", choices=list(available()), help="pruning method (default: wanda)")
    p.add_argument("--sparsity", type=float, default=None, help="share of weights to zero, in [0, 1) (default 0.5; implied by N:M)")
    p.add_argument("--structure", default="unstructured", help="'unstructured' or N:M, e.g. 2:4 (N zeros in every M weights)")
    p.add_argument("--calib", default=None, help="language mix LANG:N_SAMPLES,... e.g. en:64,sw:64 (default: 128 samples over the source's languages)")
    p.add_argument("--calib-source", default=None, help="folder of {lang}.txt/.jsonl files, or a datasets id (default: the shared calibration data)")
    p.add_argument("--calib-config", default="{lang}", help="datasets config name pattern for a language (default '{lang}')")
    p.add_argument("--calib-split", default="train", help="datasets split (default train)")
    p.add_argument("--calib-text-field", default="text", help="text field of .jsonl files / dataset rows")
    p.add_argument("--seqlen", type=int, default=DEFAULT_SEQLEN, help=f"tokens per calibration sample (default {DEFAULT_SEQLEN})")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=int, default=2, help="calibration samples per forward (default 2: the activation peak grows with it)")
    p.add_argument("--device", default="auto", help="compute device: auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument(
        "--pipeline", default="sequential", choices=["sequential", "independent"],
        help="calibrate each block on the pruned outputs before it (sequential, default) or on dense inputs "
        "(independent: one pass per block, about half the time)",
    )
    p.add_argument("--offload", action="store_true", help="keep calibration activations on CPU between uses (bounds GPU memory)")
    p.add_argument(
        "--stream", action="store_true",
        help="read each block from the safetensors files when its turn comes and write it out pruned right after: "
        "memory holds the embeddings and one block, whatever the depth (decoder-only models; one shard per block)",
    )
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights dtype")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the repo's own Python code (off by default)")
    p.add_argument("--max-shard-size", default="2GB", help="safetensors shard size (default 2GB)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from .pruning.profiles import add_profile_arguments

    add_profile_arguments(p)
    group = p.add_argument_group("method options")
    for method_name, field in cli_options():
        group.add_argument(
            field.metadata["flag"],
            dest=f"m_{field.name}",
            type=type(field.default),
            default=None,
            help=f"[{method_name}] {field.metadata.get('help', '')} (default {field.default})",
        )
    p.set_defaults(handler=_run_prune)


def _run_prune(args: argparse.Namespace) -> int:
    from .api import prune_pretrained
    from .calibration import open_source, parse_mix
    from .pruning.profiles import profile_from_args
    from .pruning.registry import available
    from .pruning.structure import Structure

    method_cls = available()[args.method]
    method_fields = {f.name for f in getattr(method_cls, "__dataclass_fields__", {}).values()}
    method_params = {k[2:]: v for k, v in vars(args).items() if k.startswith("m_") and v is not None}
    stray = sorted(set(method_params) - method_fields)
    if stray:
        raise HfpruneError(f"option(s) {', '.join('--' + s.replace('_', '-') for s in stray)} do not apply to --method {args.method}")
    structure = Structure.parse(args.structure)
    sparsity = args.sparsity if args.sparsity is not None or structure.is_nm else 0.5
    mix = parse_mix(args.calib) if args.calib else None
    profile = profile_from_args(args)
    source = None
    if method_cls.needs or profile is not None:
        source = open_source(
            args.calib_source,
            langs=[e.language for e in mix or []],
            config_pattern=args.calib_config,
            split=args.calib_split,
            text_field=args.calib_text_field,
        )
    result = prune_pretrained(
        args.model,
        args.out,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        dtype=args.dtype,
        overwrite=args.overwrite,
        max_shard_size=args.max_shard_size,
        stream=args.stream,
        command=["hfprune", *sys.argv[1:]],
        method=args.method,
        sparsity=sparsity,
        structure=structure,
        calibration=args.calib,
        calib_source=source,
        seqlen=args.seqlen,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        pipeline=args.pipeline,
        offload=args.offload,
        progress=not (args.quiet or args.json),
        profile=profile,
        **method_params,
    )
    if args.json:
        print(json.dumps({"out": args.out, **result.to_dict()}, indent=2, default=str))
    else:
        from .report import print_prune_summary

        print_prune_summary(result, args.out)
    return 0


def _add_methods(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list the pruning methods")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run_methods)


def _run_methods(args: argparse.Namespace) -> int:
    from .pruning.registry import available

    rows = [
        {"name": name, "calibration": sorted(cls.needs), "summary": cls.summary}
        for name, cls in available().items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            data = "needs " + ", ".join(row["calibration"]) if row["calibration"] else "no calibration data"
            print(f"{row['name']:<12} {row['summary']} ({data})")
    return 0


def _quiet_libraries() -> None:
    """transformers' own loading/saving bars would interleave with ours; keep its warnings only."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _add_tiny_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tiny-model",
        help="print the folder of the project's small trained multilingual model (trains it once, ~minutes)",
    )
    p.add_argument("--json", action="store_true", help="print the path and its training record as JSON")
    p.set_defaults(handler=_run_tiny_model)


def _run_tiny_model(args: argparse.Namespace) -> int:
    from .tiny_model import tiny_model_path

    folder = tiny_model_path(progress=not args.json)
    if args.json:
        record = folder / "training.json"
        info = json.loads(record.read_text()) if record.is_file() else {}
        print(json.dumps({"path": str(folder), "training": info}, indent=2))
    else:
        print(folder)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfprune", description="Prune multilingual LLMs with a calibration-language mix."
    )
    parser.add_argument("--version", action="version", version=f"hfprune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prune(sub)
    _add_methods(sub)
    _add_tiny_model(sub)
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    """Commands that live in their own packages (evaluation, ...)."""
    from .analysis.cli import add_analyze_parser, add_sweep_parser
    from .evaluation.cli import add_eval_parser, run_eval
    from .publish.cli import add_publish_commands
    from .space.cli import add_space_commands

    add_eval_parser(sub).set_defaults(handler=run_eval)
    add_publish_commands(sub)
    add_sweep_parser(sub)
    add_analyze_parser(sub)
    add_space_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    return_large_buffers_promptly()
    handler: Handler = getattr(args, "handler", None) or (lambda a: parser.error("choose a command"))
    try:
        return int(handler(args) or 0)
    except HfpruneError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
