"""``hfprune export --to openvino``: a pruned (or any) model folder -> an OpenVINO IR a CPU runs smaller and faster.

Through optimum-intel's exporter and NNCF's weight compression, then hfprune's own checks: the IR's zeros read
back (sparse models are quantised symmetrically so the pruned zeros survive int8), the runtime file that turns
OpenVINO's sparse decompression on when the weights are sparse enough, the verification against the PyTorch model
per language (:mod:`.verify`), and the size and decode speed of both, timed in turns. Nothing is kept unless it
all passes; the folder appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..calibration import Mix, default_source, parse_mix
from ..calibration.held_out import HeldOut, available_languages, flores_folders, read_held_out
from ..constants import METADATA_FILE, VERSION
from ..errors import ExportError, ExportSettingsError, OutputOverlapsModelError
from ..io import (
    atomic_folder,
    check_not_over_model,
    check_output,
    portable_command,
    read_json_object,
    write_record,
)
from ..models import load_model
from ..models import openvino_compat as compat
from ..models.loading import checkpoint_folder, weights_sha256
from ..models.speed import compare_generate_speeds
from ..system import library_versions
from . import ir
from .runtime import (
    EXPORT_RECORD,
    PRECISION_PROPERTY,
    SPARSE_PROPERTY,
    compiled_property,
    load_openvino,
    runtime_config,
    write_runtime,
)
from .settings import SPARSE_ENOUGH, ExportSettings
from .signal_stack import signal_stack_kept
from .verify import verify

#: The default sparse-decompression rate for a sparse int8 export (OpenVINO packs matrices with at least this share
#: of zeros; 0.5 takes 50% unstructured and 2:4 models).
DEFAULT_SPARSE_RATE = 0.5
#: Characters per document of data-aware int4's text (NNCF cuts its own windows from them).
INT4_DOCUMENT_CHARS = 2000


@dataclass
class ExportResult:
    out: Path
    record: dict[str, Any]


def export_openvino(
    model: str | Path,
    out: str | Path,
    settings: ExportSettings | None = None,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
) -> ExportResult:
    """Export ``model`` (a folder or Hub id, safetensors) to ``out``; see the module docstring.

    ``out`` may be a new subfolder of a local ``model`` folder (``DIR/openvino``): ``hfprune push DIR`` then
    publishes the export beside the PyTorch weights. The model folder's own files are never touched.

    Raises:
        ExportUnavailableError: optimum-intel / openvino / nncf are missing or not the tested versions.
        ExportSettingsError: settings that cannot work for this model (int4 text in a language with none).
        ExportVerificationError: the export does not reproduce the model (nothing is written).
        OutputExistsError, OutputNotOursError, OutputNotWritableError, DiskFullError: see :func:`hfprune.io.check_output`.
    """
    settings = settings or ExportSettings()
    with signal_stack_kept():  # the libraries below leave a signal stack that they unmap (see .signal_stack)
        return _export(model, out, settings, overwrite, command)


def _export(
    model: str | Path, out: str | Path, settings: ExportSettings, overwrite: bool, command: Sequence[str] | None
) -> ExportResult:
    started = time.perf_counter()
    target = _check_out(model, out, overwrite)
    adjustments = compat.prepare()  # refuses an untested stack before any long work
    folder = checkpoint_folder(model)
    pruning = _pruning_record(folder)
    langs = _verify_languages(settings, pruning)
    held_out = _held_out(langs, settings.verify_sentences)
    loaded = load_model(folder, dtype=torch.float32, require_tokenizer=True)
    torch_model, tokenizer = loaded.model.eval(), loaded.tokenizer
    sparsity = _block_zero_share(torch_model)
    sym = settings.sym if settings.sym is not None else sparsity >= SPARSE_ENOUGH
    texts, text_record = _int4_text(settings, pruning)
    quantization = _quantization(settings, sym, texts, folder)
    with atomic_folder(target, overwrite=overwrite, marker=EXPORT_RECORD) as tmp:
        with _quiet():
            exported = _convert(folder, quantization, settings.weights)
            exported.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        openvino_tokenizer = _openvino_tokenizer(tokenizer, tmp)
        matrices = ir.weight_matrices(tmp)  # the IR's constants, read once
        rate = _sparse_rate(settings, ir.block_zero_share(matrices))
        weights_record = ir.describe(tmp, matrices, rate)
        runtime = runtime_config(rate, weights_record["block_zero_share"], settings.weights)
        write_runtime(tmp, runtime)
        threads = settings.threads or torch.get_num_threads()
        torch.set_num_threads(threads)
        with _quiet():
            compiled = load_openvino(tmp, threads=threads)
        runtime["compiled"] = {
            name: compiled_property(compiled, name) for name in (PRECISION_PROPERTY, SPARSE_PROPERTY)
        }
        checked = verify(
            torch_model,
            compiled,
            tokenizer,
            held_out.sentences,
            weights=settings.weights,
            greedy_tokens=settings.greedy_tokens,
        )
        speed = _speed(torch_model, compiled, tokenizer, held_out.sentences) if settings.speed else None
        safetensors_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        record = {
            "hfprune_version": VERSION,
            "target": settings.to,
            "weights": settings.weights,
            "settings": settings.to_dict(),
            "source": {
                "folder": folder.name,
                "weights_sha256": weights_sha256(folder),
                "pruning": _pruning_summary(pruning),
                "block_zero_share_pytorch": sparsity,
            },
            "quantization": {**_describe_quantization(quantization, settings.weights, sym), "text": text_record},
            "ir": weights_record,
            "runtime": runtime,
            "openvino_tokenizer": openvino_tokenizer,
            "sizes": {
                "safetensors_bytes": safetensors_bytes,
                "ir_bytes": weights_record["ir_bytes"],
                "ratio": weights_record["ir_bytes"] / safetensors_bytes,
            },
            "verification": {"held_out": held_out.describe(), **checked},
            "speed": speed,
            "threads": threads,
            "time_s": time.perf_counter() - started,
            "versions": {**library_versions(), **{k: v for k, v in compat.installed_versions().items() if v}},
            "adjustments": adjustments,
            "command": portable_command(list(command)) if command else None,
        }
        write_record(tmp / EXPORT_RECORD, record)
    return ExportResult(target, record)


def _check_out(model: str | Path, out: str | Path, overwrite: bool) -> Path:
    """``out`` is checked before any work; inside a local model folder only as a new direct subfolder."""
    target = Path(out).expanduser()
    source = Path(model).expanduser()
    inside = source.is_dir() and target.absolute().parent.resolve() == source.resolve()
    if not inside:
        check_not_over_model(model, target)
    elif target.name.startswith(".") or (
        target.exists() and not (target / EXPORT_RECORD).is_file() and any(target.iterdir())
    ):
        raise OutputOverlapsModelError(
            f"{target} is a folder of the model itself; export into a new subfolder (e.g. {source / 'openvino'})"
        )
    return check_output(target, overwrite, marker=EXPORT_RECORD)


def _pruning_record(folder: Path) -> dict[str, Any]:
    path = folder / METADATA_FILE
    return read_json_object(path) if path.is_file() else {}


def _pruning_summary(pruning: dict[str, Any]) -> dict[str, Any] | None:
    if not pruning:
        return None
    calibration = pruning.get("calibration") or {}
    return {
        "method": pruning.get("method"),
        "target_sparsity": pruning.get("target_sparsity"),
        "achieved_sparsity": pruning.get("achieved_sparsity"),
        "structure": pruning.get("structure"),
        "calibration_mix": calibration.get("mix"),
        "base_model": (pruning.get("base_model") or {}).get("id") or (pruning.get("base_model") or {}).get("name"),
    }


def _verify_languages(settings: ExportSettings, pruning: dict[str, Any]) -> list[str]:
    """The languages to check in: asked for, else the pruning's calibration languages, else the kept vocabulary's."""
    if settings.verify_langs:
        return list(settings.verify_langs)
    mix = (pruning.get("calibration") or {}).get("mix")
    if mix:
        return parse_mix(mix).languages
    kept = ((pruning.get("vocabulary") or {}).get("settings") or {}).get("langs")
    return list(kept) if kept else ["en"]


def _held_out(langs: list[str], sentences: int) -> HeldOut:
    found = read_held_out(langs, sentences)
    missing = found.missing(langs)
    if missing:
        there = sorted({lang for _, folder in flores_folders() for lang in available_languages(folder)})
        raise ExportSettingsError(
            f"no held-out text to verify the export in {', '.join(missing)} (the data has "
            f"{', '.join(there) or 'no FLORES text'}); pass --verify-langs with languages it has"
        )
    return found


def _block_zero_share(model: torch.nn.Module) -> float:
    zeros = total = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}.":
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    return zeros / total if total else 0.0


def _int4_text(settings: ExportSettings, pruning: dict[str, Any]) -> tuple[list[str] | None, dict[str, Any] | None]:
    """Data-aware int4's text: documents of the given mix (else the pruning's mix), seeded; none for other formats."""
    if settings.weights != "int4":
        return None, None
    mix: Mix | None = settings.calib
    if mix is None and (pruning.get("calibration") or {}).get("mix"):
        mix = parse_mix(pruning["calibration"]["mix"])
    if mix is None:
        return None, {"data_aware": False, "why": "no --calib and no pruning record: data-free int4"}
    source = default_source(mix.languages)
    texts: list[str] = []
    per_language = {}
    for entry in mix:
        documents = source.documents(entry.language, INT4_DOCUMENT_CHARS)
        random.Random(f"{settings.seed}:{entry.language}").shuffle(documents)
        chosen = documents[: entry.samples]
        if not chosen:
            raise ExportSettingsError(f"no text in '{entry.language}' for data-aware int4; choose another --calib")
        texts.extend(chosen)
        per_language[entry.language] = {
            "documents": len(chosen),
            "sha256": hashlib.sha256("\n".join(chosen).encode("utf-8")).hexdigest(),
        }
    return texts, {"data_aware": True, "mix": str(mix), "languages": per_language, "source": source.describe()}


def _quantization(settings: ExportSettings, sym: bool, texts: list[str] | None, folder: Path) -> Any:
    from optimum.intel import OVWeightQuantizationConfig

    if settings.weights == "int8":
        return OVWeightQuantizationConfig(bits=8, sym=sym)
    if settings.weights == "int4":
        values: dict[str, Any] = {"bits": 4, "sym": sym, "group_size": settings.group_size, "ratio": 1.0}
        if texts:
            values |= {
                "dataset": texts,
                "tokenizer": str(folder),
                "num_samples": len(texts),
                "quant_method": "awq",
                "scale_estimation": True,
            }
        return OVWeightQuantizationConfig(**values)
    return None


def _describe_quantization(config: Any, weights: str, sym: bool) -> dict[str, Any]:
    if config is None:
        return {"weights": weights, "compressed": weights == "fp16"}
    return {
        "weights": weights,
        "bits": config.bits,
        "sym": sym,
        "group_size": getattr(config, "group_size", None),
        "method": str(getattr(config, "quant_method", "default")),
        "scale_estimation": getattr(config, "scale_estimation", None),
        "why_sym": "symmetric keeps pruned zeros exact (asymmetric stores them as the zero point)" if sym else None,
    }


def _convert(folder: Path, quantization: Any, weights: str) -> Any:
    from optimum.intel import OVModelForCausalLM

    try:
        exported = OVModelForCausalLM.from_pretrained(
            str(folder),
            export=True,
            compile=False,
            load_in_8bit=False,
            quantization_config=quantization,
            trust_remote_code=False,
        )
    except (ValueError, KeyError, NotImplementedError) as err:
        raise ExportError(f"optimum-intel cannot export {folder.name} to OpenVINO: {err}") from err
    if weights == "fp16":
        exported.half()
    return exported


def _openvino_tokenizer(tokenizer: Any, folder: Path) -> dict[str, Any]:
    """The tokenizer as OpenVINO models too (what openvino-genai reads); recorded as missing when it cannot be."""
    try:
        import openvino as ov
        from openvino_tokenizers import convert_tokenizer

        with _quiet():
            encoder, decoder = convert_tokenizer(tokenizer, with_detokenizer=True)
        ov.save_model(encoder, str(folder / "openvino_tokenizer.xml"))
        ov.save_model(decoder, str(folder / "openvino_detokenizer.xml"))
    except Exception as err:  # noqa: BLE001 - optional: the IR and the transformers tokenizer are the export
        return {"converted": False, "why": f"{type(err).__name__}: {err}"[:300]}
    return {"converted": True, "files": ["openvino_tokenizer.xml", "openvino_detokenizer.xml"]}


def _sparse_rate(settings: ExportSettings, zero_share: float | None) -> float | None:
    if settings.sparse_rate is not None:
        return settings.sparse_rate
    if settings.weights == "int8" and zero_share is not None and zero_share >= SPARSE_ENOUGH:
        return DEFAULT_SPARSE_RATE if zero_share >= DEFAULT_SPARSE_RATE - 0.01 else round(zero_share - 0.01, 2)
    return None


def _speed(torch_model: Any, compiled: Any, tokenizer: Any, sentences: dict[str, list[str]]) -> dict[str, Any]:
    """Decode speed of the PyTorch model (fp32) and the export, in turns, on the first language's first sentence."""
    first = next(iter(sentences.values()))[0]
    prompt = torch.tensor([tokenizer(first)["input_ids"]])
    speeds = compare_generate_speeds({"pytorch_fp32": (torch_model, prompt), "export": (compiled, prompt)})
    return speeds | {"speedup": speeds["export"]["decode_tokens_per_s"] / speeds["pytorch_fp32"]["decode_tokens_per_s"]}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's tracer warnings and NNCF's info lines say nothing a user can act on."""
    from transformers.utils import logging as transformers_logging

    loggers = {name: logging.getLogger(name) for name in ("nncf", "optimum")}
    levels, verbosity = {name: lg.level for name, lg in loggers.items()}, transformers_logging.get_verbosity()
    for found in loggers.values():
        found.setLevel(logging.ERROR)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        # NNCF draws its progress on stdout; stdout is for results (``--json``).
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, found in loggers.items():
            found.setLevel(levels[name])
        transformers_logging.set_verbosity(verbosity)
        transformers_logging.enable_progress_bar()
