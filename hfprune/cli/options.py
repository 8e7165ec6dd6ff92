"""Command-line options declared once and read once: ``prune``, ``run`` and ``sweep`` take the same ones.

Each ``add_*`` function declares one group of options on a parser; the readers below turn the parsed
namespace into the library's types (:class:`~hfprune.PruneSettings`, :class:`~hfprune.SourceSpec`, method
parameters). A new option of the pruning run is added here once and every command has it. Defaults come from
:mod:`hfprune.constants`, choices from the library (methods, pipelines, profiles), never spelled out again.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..api import PruneSettings
from ..calibration import Mix, SourceSpec
from ..constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_METHOD,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
    DEFAULT_SPARSITY,
)
from ..errors import InvalidMethodParameterError, InvalidSparsityError
from ..models import DEVICE_MAPS, Placement
from ..pruning.engine import PIPELINES
from ..pruning.methods import available, method_options, parameter_names
from ..pruning.profiles import PROFILES, SparsityProfile, make_profile
from ..pruning.structure import Structure, resolve_sparsity

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: namespace attribute prefix of method parameters (``--percdamp`` -> ``m_percdamp``)
_METHOD_PREFIX = "m_"


# --- declaring ------------------------------------------------------------------------------------------
def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Where the model comes from and how it is loaded."""
    parser.add_argument("model", metavar="MODEL", help="Hub repo id (owner/name) or a local model folder")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of MODEL")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the repo's own Python code (off by default)"
    )
    parser.add_argument("--dtype", default="auto", choices=DTYPES, help="weights dtype (default: the checkpoint's)")


def add_method_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """``--method`` (``--methods`` for a grid) and every method's own parameters."""
    names = ", ".join(available())
    if grid:
        parser.add_argument(
            "--methods", required=True, help=f"comma-separated methods, e.g. wanda,mwanda (known: {names})"
        )
    else:
        parser.add_argument(
            "--method",
            default=DEFAULT_METHOD,
            choices=list(available()),
            help=f"pruning method (default {DEFAULT_METHOD})",
        )
    group = parser.add_argument_group("method options" + (" (applied to every method that has them)" if grid else ""))
    declared: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    for method_name, field in method_options():
        declared.setdefault(field.metadata["flag"], []).append(method_name)
        fields[field.metadata["flag"]] = field
    for flag, owners in declared.items():
        field = fields[flag]
        group.add_argument(
            flag, dest=_METHOD_PREFIX + field.name, metavar=field.name.upper(), type=type(field.default), default=None,
            help=f"[{', '.join(owners)}] {field.metadata.get('help', '')} (default {field.default})",
        )  # fmt: skip


def add_sparsity_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """``--sparsity`` (repeatable for a grid) and ``--structure``."""
    if grid:
        parser.add_argument(
            "--sparsity", action="append", default=None,
            help=f"sparsity, repeatable or comma-separated (default {DEFAULT_SPARSITY}; implied by N:M)",
        )  # fmt: skip
    else:
        parser.add_argument(
            "--sparsity", type=float, default=None,
            help=f"share of weights to zero, in [0, 1) (default {DEFAULT_SPARSITY}; implied by N:M)",
        )  # fmt: skip
    parser.add_argument(
        "--structure", default="unstructured", help="'unstructured' or N:M, e.g. 2:4 (N zeros in every M weights)"
    )


def add_calibration_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """The calibration mix (repeatable for a grid: one row per mix), its text source, sample length and seed."""
    group = parser.add_argument_group("calibration")
    if grid:
        group.add_argument(
            "--calib",
            action="append",
            required=True,
            help="a calibration mix LANG:N,...; repeat for each row of the grid",
        )
    else:
        group.add_argument(
            "--calib", default=None,
            help="language mix LANG:N_SAMPLES,... e.g. en:64,sw:64 (default: 128 samples over the source's languages)",
        )  # fmt: skip
    group.add_argument(
        "--calib-source",
        default=None,
        help="folder of {lang}.txt/.jsonl files, or a datasets id (default: the shared calibration data)",
    )
    group.add_argument(
        "--calib-config", default="{lang}", help="datasets config name pattern for a language (default '{lang}')"
    )
    group.add_argument("--calib-split", default="train", help="datasets split (default train)")
    group.add_argument("--calib-text-field", default="text", help="text field of .jsonl files / dataset rows")
    group.add_argument(
        "--seqlen", type=int, default=DEFAULT_SEQLEN, help=f"tokens per calibration sample (default {DEFAULT_SEQLEN})"
    )
    group.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default {DEFAULT_SEED})")


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    """``--sparsity-profile``, ``--owl-m``, ``--owl-lambda``."""
    group = parser.add_argument_group("layerwise sparsity")
    group.add_argument(
        "--sparsity-profile", default="uniform", choices=PROFILES,
        help="how sparsity is spread over blocks; the mean over prunable weights stays the target (default uniform)",
    )  # fmt: skip
    group.add_argument(
        "--owl-m",
        type=float,
        default=None,
        help="[owl] outlier threshold: scores above M x mean count as outliers (default 5)",
    )
    group.add_argument(
        "--owl-lambda",
        type=float,
        default=None,
        help="[owl, crosslingual] block sparsities stay within target +- lambda (default 0.08)",
    )


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Where and how the engine runs: device, batch size, calibration pipeline, activation offload."""
    group = parser.add_argument_group("engine")
    group.add_argument("--device", default="auto", help="compute device: auto, cpu, cuda, cuda:1 (default auto)")
    group.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
        help=f"calibration samples per forward (default {DEFAULT_BATCH_SIZE}: the activation peak grows with it)",
    )  # fmt: skip
    group.add_argument(
        "--pipeline", default=PIPELINES[0], choices=PIPELINES,
        help="calibrate each block on the pruned outputs before it (sequential, default) or on dense inputs "
        "(independent: one pass per block, about half the time)",
    )  # fmt: skip
    group.add_argument(
        "--offload", action="store_true", help="keep calibration activations on CPU between uses (bounds GPU memory)"
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """How the pruned checkpoint is written: shard size, streaming, replacing an existing output."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "--max-shard-size",
        default=DEFAULT_MAX_SHARD_SIZE,
        help=f"safetensors shard size (default {DEFAULT_MAX_SHARD_SIZE})",
    )
    group.add_argument(
        "--stream", action="store_true",
        help="read each block from the safetensors files when its turn comes and write it out pruned right after: "
        "memory holds the embeddings and one block, whatever the depth (decoder-only models; one shard per block)",
    )  # fmt: skip
    group.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    """A model bigger than one device: ``--device-map`` with ``--max-memory`` and disk offload (accelerate)."""
    group = parser.add_argument_group("placement (models bigger than one device)")
    group.add_argument(
        "--device-map", choices=DEVICE_MAPS, default=None,
        help="spread the model over the GPUs, CPU and disk with accelerate (default: load it whole on one device)",
    )  # fmt: skip
    group.add_argument(
        "--max-memory", metavar="DEV=SIZE,...",
        help="memory each device may hold, e.g. 0=20GiB,1=20GiB,cpu=64GiB; what does not fit goes to disk",
    )  # fmt: skip
    group.add_argument(
        "--offload-folder", metavar="DIR",
        help="where weights offloaded to disk are kept (a fresh sub-folder, removed after; default: the temp folder)",
    )  # fmt: skip


def add_pruning_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """Everything that decides a pruning run, as ``prune``, ``run`` and ``sweep`` share it."""
    add_method_options(parser, grid=grid)
    add_sparsity_options(parser, grid=grid)
    add_calibration_options(parser, grid=grid)
    add_profile_options(parser)
    add_engine_options(parser)


# --- reading --------------------------------------------------------------------------------------------
def comma_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def source_spec(args: argparse.Namespace) -> SourceSpec:
    return SourceSpec(
        args.calib_source, config_pattern=args.calib_config, split=args.calib_split, text_field=args.calib_text_field
    )


def profile(args: argparse.Namespace) -> SparsityProfile | None:
    """The layerwise profile the options ask for, or ``None`` for uniform."""
    return make_profile(args.sparsity_profile, delta=args.owl_lambda, owl_m=args.owl_m)


def method_params(args: argparse.Namespace, methods: list[str], *, grid: bool = False) -> dict[str, dict[str, Any]]:
    """Each method's parameters from its flags; a flag that none of ``methods`` takes is an error."""
    given = {
        k[len(_METHOD_PREFIX) :]: v for k, v in vars(args).items() if k.startswith(_METHOD_PREFIX) and v is not None
    }
    takes = {method: parameter_names(method) for method in methods}
    stray = sorted(name for name in given if not any(name in names for names in takes.values()))
    if stray:
        flags = ", ".join(_flag(name) for name in stray)
        whom = f"--methods {','.join(methods)}" if grid else f"--method {methods[0]}"
        verb = "apply to none of" if grid else "do not apply to"
        raise InvalidMethodParameterError(f"option(s) {flags} {verb} {whom}")
    return {method: {k: v for k, v in given.items() if k in takes[method]} for method in methods}


def prune_settings(args: argparse.Namespace) -> PruneSettings:
    """The :class:`PruneSettings` of ``prune`` or ``run``: every pruning option, read in one place."""
    return PruneSettings(
        method=args.method, method_params=method_params(args, [args.method])[args.method], sparsity=args.sparsity,
        structure=Structure.parse(args.structure), calibration=Mix.parse(args.calib) if args.calib else None,
        calib_source=source_spec(args), seqlen=args.seqlen, seed=args.seed, device=args.device,
        batch_size=args.batch_size, profile=profile(args), pipeline=args.pipeline, offload=args.offload,
    )  # fmt: skip


def placement(args: argparse.Namespace) -> Placement | None:
    """The placement ``--device-map``, ``--max-memory`` and ``--offload-folder`` ask for (``None``: none)."""
    return Placement.parse(args.device_map, args.max_memory, args.offload_folder)


def target_sparsity(args: argparse.Namespace) -> float:
    """The sparsity a single run aims at (given, implied by N:M, or the default)."""
    return resolve_sparsity(args.sparsity, Structure.parse(args.structure))


def sparsities(values: list[str] | None) -> list[float]:
    """``--sparsity`` of a grid: repeatable and comma-separated."""
    out = []
    for value in values or [str(DEFAULT_SPARSITY)]:
        for part in comma_list(value):
            try:
                out.append(float(part))
            except ValueError:
                raise InvalidSparsityError(
                    f"--sparsity '{part}' is not a number; write e.g. --sparsity 0.5 --sparsity 0.6"
                ) from None
    return out


def _flag(parameter: str) -> str:
    flags = {field.name: str(field.metadata["flag"]) for _, field in method_options()}
    return flags.get(parameter, "--" + parameter.replace("_", "-"))
