"""Command-line options declared once and read once: ``prune``, ``run`` and ``sweep`` take the same ones.

Each ``add_*`` function declares one group of options on a parser; the readers below turn the parsed
namespace into the library's types (:class:`~hfprune.PruneSettings`, :class:`~hfprune.SourceSpec`, method
parameters). A new option of the pruning run is added here once and every command has it. Defaults come from
:mod:`hfprune.constants`, choices from the library (methods, pipelines, profiles), never spelled out again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api import PruneSettings
from ..calibration import Mix, SourceSpec
from ..constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_EVAL_BATCH_SIZE,
    DEFAULT_HEAL_TOKENS,
    DEFAULT_LANG_AGG,
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_METHOD,
    DEFAULT_SEED,
    DEFAULT_SEQLEN,
    DEFAULT_SPARSITY,
)
from ..errors import InvalidMethodParameterError, InvalidOptionError, InvalidSparsityError
from ..healing import HEAL_MODES, HealSettings
from ..models import DEVICE_MAPS, ModelSource, Placement
from ..pruning.engine import PIPELINES
from ..pruning.methods import available, method_options, parameter_names
from ..pruning.profiles import PROFILES, SparsityProfile, make_profile
from ..pruning.sparsity_pattern import resolve_sparsity
from ..pruning.structured import LANG_AGGS, StructuredSpec, parse_structure
from ..system import resolve_device
from ..vocab import VocabSettings
from ..vocab.frequency import DEFAULT_LIST_WORDS
from ..vocab.settings import DEFAULT_VOCAB_CHARS, WIKIPEDIA

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: namespace attribute prefix of method parameters (``--percdamp`` -> ``m_percdamp``)
_METHOD_PREFIX = "m_"


# --- value types: a bad number is a usage error, said before anything is loaded ----------------------------
def whole_number(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for whole numbers in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def open_fraction(text: str) -> float:
    """An argparse type for a share strictly between 0 and 1 (a sparsity a run can reach)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 1, got {text}")
    return value


positive_int = whole_number(1)


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
            flag,
            dest=_METHOD_PREFIX + field.name,
            metavar=field.name.upper(),
            type=type(field.default),
            default=None,
            help=f"[{', '.join(owners)}] {field.metadata.get('help', '')} (default {field.default})",
        )


def add_sparsity_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """``--sparsity`` (repeatable for a grid) and ``--structure``."""
    if grid:
        parser.add_argument(
            "--sparsity",
            action="append",
            default=None,
            help=f"sparsity, repeatable or comma-separated (default {DEFAULT_SPARSITY}; implied by N:M)",
        )
    else:
        parser.add_argument(
            "--sparsity",
            type=float,
            default=None,
            help=f"share of weights to zero, in [0, 1) (default {DEFAULT_SPARSITY}; implied by N:M)",
        )
    parser.add_argument(
        "--structure",
        default="unstructured",
        help="'unstructured' or N:M, e.g. 2:4 (N zeros in every M weights); or remove whole structures: width:F "
        "(fraction F of every block's MLP neurons), heads:K (K attention heads per block, in whole key/value groups), "
        "depth:K (K blocks), comma-combined, e.g. width:0.25,depth:2",
    )


def add_structured_options(parser: argparse.ArgumentParser) -> None:
    """How structured removal (``--structure width:F``, ``heads:K``, ``depth:K``) chooses and repairs."""
    group = parser.add_argument_group("structured pruning (--structure width:F, heads:K, depth:K)")
    group.add_argument(
        "--lang-agg",
        default=None,
        choices=LANG_AGGS,
        help="combine per-language importance: pooled (token-weighted statistics, as Wanda), or mean / min / max over "
        f"languages of each language's normalised scores (max keeps what any language needs; default {DEFAULT_LANG_AGG})",
    )
    group.add_argument(
        "--no-refit",
        action="store_true",
        help="do not refit the output projections of kept neurons and heads by least squares (the ablation)",
    )
    group.add_argument(
        "--no-speed",
        action="store_true",
        help="skip the CPU tokens/s measurement of the dense and the pruned model (recorded in hfprune.json)",
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
            "--calib",
            default=None,
            help="language mix LANG:N_SAMPLES,... e.g. en:64,sw:64 (default: 128 samples over the source's languages)",
        )
    group.add_argument(
        "--calib-source",
        default=None,
        help="folder of {lang}.txt/.jsonl files, or a datasets id (default, per language: $HFPRUNE_DATA_DIR/calib, "
        "the text shipped with hfprune, Wikipedia on the Hub when online)",
    )
    group.add_argument(
        "--calib-config", default="{lang}", help="datasets config name pattern for a language (default '{lang}')"
    )
    group.add_argument("--calib-split", default="train", help="datasets split (default train)")
    group.add_argument("--calib-text-field", default="text", help="text field of .jsonl files / dataset rows")
    group.add_argument(
        "--seqlen",
        type=whole_number(2),
        default=DEFAULT_SEQLEN,
        help=f"tokens per calibration sample (default {DEFAULT_SEQLEN})",
    )
    group.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default {DEFAULT_SEED})")


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    """``--sparsity-profile``, ``--owl-m``, ``--owl-lambda``."""
    group = parser.add_argument_group("layerwise sparsity")
    group.add_argument(
        "--sparsity-profile",
        default="uniform",
        choices=PROFILES,
        help="how sparsity is spread over blocks; the mean over prunable weights stays the target (default uniform)",
    )
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
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"calibration samples per forward (default {DEFAULT_BATCH_SIZE}: the activation peak grows with it)",
    )
    group.add_argument(
        "--pipeline",
        default=PIPELINES[0],
        choices=PIPELINES,
        help="calibrate each block on the pruned outputs before it (sequential, default) or on dense inputs "
        "(independent: one pass per block, about half the time)",
    )
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
        "--stream",
        action="store_true",
        help="read each block from the safetensors files when its turn comes and write it out pruned right after: "
        "memory holds the embeddings and one block, whatever the depth (decoder-only models; one shard per block)",
    )
    group.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def add_vocab_options(parser: argparse.ArgumentParser, *, with_pruning: bool = True) -> None:
    """Vocabulary trimming: ``--trim-vocab`` on ``prune``, ``run`` and ``sweep``; the ``--vocab-*`` choices also
    on ``trim-vocab`` (which names its languages with ``--langs``)."""
    group = parser.add_argument_group("vocabulary trimming")
    if with_pruning:
        group.add_argument(
            "--trim-vocab",
            action="store_true",
            help="also drop the tokens the kept languages never use (embedding and output rows), before pruning",
        )
        group.add_argument(
            "--vocab-langs", default=None, help="languages whose tokens stay (default: the calibration mix's)"
        )
    group.add_argument(
        "--vocab-source",
        default=None,
        help="text that decides the kept tokens: a folder of {lang}.txt/.jsonl, a datasets id, or 'wikipedia' "
        "(each language's Wikipedia streamed from the Hub, --vocab-chars far) (default: --calib-source, else "
        "hfprune's default calibration text)",
    )
    group.add_argument("--vocab-config", default="{lang}", help="datasets config pattern of --vocab-source")
    group.add_argument("--vocab-split", default="train", help="datasets split of --vocab-source (default train)")
    group.add_argument("--vocab-text-field", default="text", help="text field of --vocab-source rows / .jsonl files")
    group.add_argument(
        "--vocab-chars",
        type=int,
        default=DEFAULT_VOCAB_CHARS,
        help=f"characters of text read per language (default {DEFAULT_VOCAB_CHARS:,}; a dataset is streamed this far)",
    )
    group.add_argument(
        "--vocab-min-count", type=int, default=1, help="keep a seen token only if it occurs this often (default 1)"
    )
    group.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="rows of the whole vocabulary, filled by frequency (special, byte and script tokens count against "
        "it); the languages share it by their weights (--langs en:2,sw:1)",
    )
    group.add_argument(
        "--vocab-coverage",
        type=float,
        default=None,
        help="keep the fewest tokens that cover this share of each language's token occurrences, e.g. 0.999 "
        "(--vocab-size then caps it)",
    )
    group.add_argument(
        "--vocab-no-word-lists",
        action="store_true",
        help="rank tokens by the running text alone (default: mixed with wordfreq's word lists where it has "
        "the language)",
    )
    group.add_argument(
        "--vocab-list-words",
        type=int,
        default=DEFAULT_LIST_WORDS,
        help=f"words of each word list used, most frequent first (default {DEFAULT_LIST_WORDS:,})",
    )
    group.add_argument(
        "--vocab-scripts",
        action="store_true",
        help="also keep every token written in the kept languages' Unicode scripts: text in those scripts then "
        "tokenizes exactly as before",
    )
    group.add_argument(
        "--vocab-verify-source",
        default=None,
        help="held-out text for the built-in check: a folder of {lang}.txt (default: FLORES devtest)",
    )
    group.add_argument(
        "--vocab-verify-langs", default=None, help="languages not kept whose tokenization is measured (default: two)"
    )
    group.add_argument(
        "--vocab-verify-sentences", type=int, default=None, help="held-out sentences per language (default all)"
    )
    group.add_argument("--vocab-no-speed", action="store_true", help="do not time generation before and after trimming")


def add_eval_options(group: Any, *, batch_flags: tuple[str, ...] = ("--eval-batch-size",)) -> None:
    """The evaluation options every command that evaluates shares, declared once: the perplexity window and
    the evaluation batch size. ``eval`` (which has no calibration batch) also takes it as ``--batch-size``;
    ``run`` and ``sweep`` keep ``--batch-size`` for calibration."""
    group.add_argument(
        "--context-length",
        type=whole_number(2),
        default=DEFAULT_CONTEXT_LENGTH,
        help=f"perplexity window in tokens, BOS included (default {DEFAULT_CONTEXT_LENGTH})",
    )
    group.add_argument(
        *batch_flags,
        dest="eval_batch_size",
        type=positive_int,
        default=DEFAULT_EVAL_BATCH_SIZE,
        help=f"perplexity windows / task items per forward in evaluation (default {DEFAULT_EVAL_BATCH_SIZE})",
    )


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    """A model bigger than one device: ``--device-map`` with ``--max-memory`` and disk offload (accelerate)."""
    group = parser.add_argument_group("placement (models bigger than one device)")
    group.add_argument(
        "--device-map",
        choices=DEVICE_MAPS,
        default=None,
        help="spread the model over the GPUs, CPU and disk with accelerate (default: load it whole on one device)",
    )
    group.add_argument(
        "--max-memory",
        metavar="DEV=SIZE,...",
        help="memory each device may hold, e.g. 0=20GiB,1=20GiB,cpu=64GiB; what does not fit goes to disk",
    )
    group.add_argument(
        "--offload-folder",
        metavar="DIR",
        help="where weights offloaded to disk are kept (a fresh sub-folder, removed after; default: the temp folder)",
    )


def add_pruning_options(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """Everything that decides a pruning run, as ``prune``, ``run`` and ``sweep`` share it."""
    add_method_options(parser, grid=grid)
    add_sparsity_options(parser, grid=grid)
    add_calibration_options(parser, grid=grid)
    add_profile_options(parser)
    add_structured_options(parser)
    add_engine_options(parser)
    add_vocab_options(parser)
    if not grid:
        add_heal_after_pruning_options(parser)


def add_heal_after_pruning_options(parser: argparse.ArgumentParser) -> None:
    """``--heal`` on ``prune`` and ``run``: distil from the dense model right after pruning (``hfprune heal``
    with the base model as teacher, the pruning's device, seed and calibration source)."""
    group = parser.add_argument_group("healing after pruning (hfprune heal has every option)")
    group.add_argument(
        "--heal", action="store_true", help="heal the pruned model by distillation from the dense one before saving"
    )
    group.add_argument(
        "--heal-tokens",
        type=positive_int,
        default=DEFAULT_HEAL_TOKENS,
        help=f"tokens of healing text (default {DEFAULT_HEAL_TOKENS:,})",
    )
    group.add_argument(
        "--heal-calib",
        default=None,
        help="languages of the healing text with relative weights, e.g. en:1,sw:1 (default: --calib's languages, "
        "equal weights); never the samples the mask was chosen on",
    )
    add_heal_mode(group)
    group.add_argument("--heal-lr", type=float, default=None, help="learning rate (default 2e-5 full, 2e-4 lora)")
    add_teacher_device(group, "--heal-teacher-device")


def add_teacher_device(group: Any, flag: str) -> None:
    """Where the dense teacher runs while healing (``heal`` and the ``--heal`` of prune/run/sweep)."""
    group.add_argument(
        flag,
        default=None,
        help="device of the teacher, e.g. cpu to keep it off a GPU that only fits the student (default: beside "
        "the student)",
    )


def add_heal_mode(group: Any) -> None:
    """``--heal-mode``, as ``heal``, ``prune --heal`` and ``run --heal`` share it."""
    group.add_argument(
        "--heal-mode",
        default=HEAL_MODES[0],
        choices=HEAL_MODES,
        help="train all weights (zeros kept) or LoRA adapters merged at the end (default full)",
    )


def heal_after_pruning(args: argparse.Namespace, calib: str | None = None) -> HealSettings | None:
    """The :class:`~hfprune.healing.HealSettings` of ``--heal`` (``None`` without it); ``calib``: the pruning mix
    whose languages the text follows without ``--heal-calib`` (default ``--calib``; a sweep passes each mix)."""
    if not getattr(args, "heal", False):
        refuse_stray_options(args, _HEAL_DEFAULTS, "--heal")
        return None
    calib = calib or args.calib
    if args.heal_calib:
        mix = Mix.parse(args.heal_calib)
    elif calib:
        mix = Mix.parse(calib).with_equal_weights()
    else:
        raise InvalidOptionError("--heal needs the languages of its text: give --calib or --heal-calib")
    return HealSettings(
        calibration=mix,
        tokens=args.heal_tokens,
        calib_source=source_spec(args),
        mode=args.heal_mode,
        seqlen=args.seqlen,
        batch_size=args.batch_size,
        lr=args.heal_lr,
        seed=args.seed,
        device=args.device,
        teacher_device=args.heal_teacher_device,
    )


#: ``--heal-*`` destinations and their defaults: given without ``--heal`` they would do nothing.
_HEAL_DEFAULTS = {
    "heal_tokens": DEFAULT_HEAL_TOKENS,
    "heal_calib": None,
    "heal_mode": HEAL_MODES[0],
    "heal_lr": None,
    "heal_teacher_device": None,
}


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
    """The :class:`PruneSettings` of ``prune`` or ``run``: every pruning option, read in one place (and the
    device checked now, not after the model is loaded)."""
    check_sparsity_given(args.sparsity)
    resolve_device(args.device)
    return PruneSettings(
        method=args.method,
        method_params=method_params(args, [args.method])[args.method],
        sparsity=args.sparsity,
        structure=parse_structure(args.structure),
        calibration=Mix.parse(args.calib) if args.calib else None,
        calib_source=source_spec(args),
        seqlen=args.seqlen,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        profile=profile(args),
        pipeline=args.pipeline,
        offload=args.offload,
        vocab=vocab_settings(args),
        lang_agg=args.lang_agg,
        refit=not args.no_refit,
        measure_speed=not args.no_speed,
        heal=heal_after_pruning(args),
    )


#: ``--vocab-*`` destinations and their defaults: given without ``--trim-vocab`` they would do nothing.
_VOCAB_DEFAULTS = {
    "vocab_langs": None,
    "vocab_source": None,
    "vocab_config": "{lang}",
    "vocab_split": "train",
    "vocab_text_field": "text",
    "vocab_chars": DEFAULT_VOCAB_CHARS,
    "vocab_min_count": 1,
    "vocab_size": None,
    "vocab_coverage": None,
    "vocab_no_word_lists": False,
    "vocab_list_words": DEFAULT_LIST_WORDS,
    "vocab_scripts": False,
    "vocab_verify_source": None,
    "vocab_verify_langs": None,
    "vocab_verify_sentences": None,
    "vocab_no_speed": False,
}


def vocab_settings(args: argparse.Namespace, langs: str | None = None) -> VocabSettings | None:
    """The :class:`VocabSettings` the ``--vocab-*`` options ask for; ``None`` without ``--trim-vocab``.

    ``langs``: the languages of ``trim-vocab`` (``--langs``); on the pruning commands ``--vocab-langs``, by
    default the calibration mix's languages (resolved by the library).
    """
    if not getattr(args, "trim_vocab", True):
        refuse_stray_options(args, _VOCAB_DEFAULTS, "--trim-vocab")
        return None
    chosen = langs if langs is not None else getattr(args, "vocab_langs", None)
    source = (
        SourceSpec(
            args.vocab_source,
            config_pattern=args.vocab_config,
            split=args.vocab_split,
            text_field=args.vocab_text_field,
        )
        if args.vocab_source and args.vocab_source != WIKIPEDIA
        else args.vocab_source
    )
    langs, weights = _weighted_langs(chosen)
    return VocabSettings(
        langs=langs,
        weights=weights,
        source=source,
        min_count=args.vocab_min_count,
        size=args.vocab_size,
        coverage=args.vocab_coverage,
        word_lists=not args.vocab_no_word_lists,
        list_words=args.vocab_list_words,
        scripts=args.vocab_scripts,
        chars=args.vocab_chars,
        verify_source=args.vocab_verify_source,
        other_langs=tuple(comma_list(args.vocab_verify_langs)) or None,
        verify_sentences=args.vocab_verify_sentences,
        measure_speed=not args.vocab_no_speed,
    )


def _weighted_langs(text: str | None) -> tuple[tuple[str, ...] | None, tuple[float, ...] | None]:
    """``en,de`` -> languages with equal shares; ``en:2,sw:1`` -> languages and their weights."""
    if not text or not text.strip():
        return None, None
    if ":" not in text:
        return tuple(comma_list(text)) or None, None
    settings = VocabSettings(langs=text)
    return settings.langs, settings.weights


def refuse_stray_options(args: argparse.Namespace, defaults: dict[str, Any], switch: str) -> None:
    """Options of a step that is off (``switch`` not given) would do nothing: name them rather than ignore them.

    Raises:
        InvalidOptionError: one of ``defaults``' destinations differs from its default.
    """
    stray = [name for name, default in defaults.items() if getattr(args, name, default) != default]
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise InvalidOptionError(f"{flags} only apply with {switch}; add {switch} or drop them")


def check_sparsity_given(sparsity: float | None) -> None:
    """A command asked to prune nothing is almost surely a mistake (the library allows it, with a warning)."""
    if sparsity == 0:
        raise InvalidSparsityError(
            "--sparsity 0 prunes nothing: the output would be a dense copy labelled as pruned; give a sparsity above 0"
        )


def model_source(args: argparse.Namespace) -> ModelSource:
    """Where MODEL comes from and how it loads: the flags of :func:`add_model_options` (and the placement ones
    where the command has them), as one :class:`ModelSource`."""
    has_placement = hasattr(args, "device_map")
    return ModelSource(
        args.model,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        dtype=args.dtype,
        placement=placement(args) if has_placement else None,
    )


def placement(args: argparse.Namespace) -> Placement | None:
    """The placement ``--device-map``, ``--max-memory`` and ``--offload-folder`` ask for (``None``: none)."""
    return Placement.parse(args.device_map, args.max_memory, args.offload_folder)


def target_sparsity(args: argparse.Namespace) -> float:
    """The sparsity a single run aims at (given, implied by N:M, or the default; 0 for structured removal)."""
    structure = parse_structure(args.structure)
    return 0.0 if isinstance(structure, StructuredSpec) else resolve_sparsity(args.sparsity, structure)


def run_folder_name(args: argparse.Namespace) -> str:
    """``hfprune run``'s default output folder: ``NAME-METHOD-SPARSITY``, or ``NAME-width25-depth2`` when structured."""
    name = Path(args.model).name
    structure = parse_structure(args.structure)
    if isinstance(structure, StructuredSpec):
        parts = [f"width{round(structure.width * 100)}" if structure.width is not None else None]
        parts += [f"{kind}{getattr(structure, kind)}" for kind in ("heads", "depth") if getattr(structure, kind)]
        return "-".join([name, *filter(None, parts)])
    return f"{name}-{args.method}-{round(target_sparsity(args) * 100)}"


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
            check_sparsity_given(out[-1])
    return out


def _flag(parameter: str) -> str:
    flags = {field.name: str(field.metadata["flag"]) for _, field in method_options()}
    return flags.get(parameter, "--" + parameter.replace("_", "-"))


# --- hfprune heal -----------------------------------------------------------------------------------------
def add_heal_options(parser: argparse.ArgumentParser) -> None:
    """How a pruned model is healed: the training run (its text options come from ``--calib``/``--calib-source``)."""
    from ..constants import DEFAULT_HEAL_TEMPERATURE, DEFAULT_HEAL_TOKENS, DEFAULT_KD_WEIGHT

    group = parser.add_argument_group("healing")
    add_heal_mode(group)
    group.add_argument(
        "--tokens",
        type=int,
        default=DEFAULT_HEAL_TOKENS,
        help=f"tokens trained on in all (default {DEFAULT_HEAL_TOKENS:,})",
    )
    group.add_argument(
        "--epochs",
        type=positive_int,
        default=1,
        help="passes over the text: --tokens / N distinct tokens, each pass reshuffled (default 1: no sample twice)",
    )
    group.add_argument(
        "--seqlen", type=whole_number(2), default=DEFAULT_SEQLEN, help=f"tokens per sample (default {DEFAULT_SEQLEN})"
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"samples per forward (default {DEFAULT_BATCH_SIZE})",
    )
    group.add_argument("--grad-accum", type=positive_int, default=1, help="forwards per optimizer step (default 1)")
    group.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default 2e-5 full, 2e-4 lora)")
    group.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_HEAL_TEMPERATURE,
        help=f"distillation temperature (default {DEFAULT_HEAL_TEMPERATURE})",
    )
    group.add_argument(
        "--kd-weight",
        type=float,
        default=DEFAULT_KD_WEIGHT,
        help=f"share of the KD loss; the rest is next-token cross-entropy (default {DEFAULT_KD_WEIGHT})",
    )
    group.add_argument(
        "--hidden-weight",
        type=float,
        default=0.0,
        help="add this times the last hidden states' relative squared difference to the loss (default 0: off; "
        "student and teacher must share the hidden width)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"training seed; the text is drawn with seed + 1 (default {DEFAULT_SEED})",
    )
    group.add_argument("--device", default="auto", help="compute device: auto, cpu, cuda, cuda:1 (default auto)")
    add_teacher_device(group, "--teacher-device")
    group.add_argument(
        "--train-embeddings",
        action="store_true",
        help="also train the input embedding and output head (full mode; off: pruning left them unchanged, and "
        "freezing them makes each step about a quarter faster on large vocabularies)",
    )
    group.add_argument(
        "--gradient-checkpointing", action="store_true", help="recompute activations in the backward (less memory)"
    )
    group.add_argument(
        "--quality-sentences",
        type=whole_number(0),
        default=16,
        help="held-out FLORES sentences per language on which dense, pruned and healed are measured for the card "
        "(default 16; 0 skips it)",
    )
    group.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="save a resumable checkpoint every K optimizer steps",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint of an interrupted run with the same settings",
    )
