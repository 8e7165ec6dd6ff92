"""optimum-intel beside hfprune's transformers: the exact versions that work, and the adjustments they need.

optimum-intel 2.2.0 (the newest release) declares ``transformers<5.6``; hfprune runs on transformers 5.25, which
renamed the forward argument and output ``past_key_values`` -> ``cache``, removed two names optimum-intel imports,
and changed how a cache layer is updated. Installed with ``--no-deps`` (its declared pins would downgrade
transformers and pull a CUDA torch through torchvision), optimum-intel needs seven runtime adjustments, all to
private internals. They are applied here and only for the exact pair they were written and tested against:
any other pair is refused with what to install, never guessed at. One of them fixes a *silent* fault: without it
``generate`` never reuses the KV cache (right tokens, quadratic time), which the export's decode probe checks.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
from typing import Any

from ..errors import ExportUnavailableError

#: The pair the adjustments below were written for and tested with.
OPTIMUM_INTEL_VERSION = "2.2.0"
TRANSFORMERS_SERIES = "5.25."
#: What to run when optimum-intel is missing (``scripts/install`` does the same).
INSTALL_HINT = (
    "pip install 'hfprune[openvino]' && pip install --no-deps optimum-intel==2.2.0 optimum==2.3.0 "
    "(--no-deps: optimum-intel's declared pins would downgrade transformers and pull a CUDA torch)"
)

_applied: list[str] = []


def installed_versions() -> dict[str, str | None]:
    """The versions of the export stack in this environment (``None``: not installed)."""
    versions: dict[str, str | None] = {}
    for name in ("optimum-intel", "optimum", "openvino", "nncf", "openvino-tokenizers", "transformers"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_versions() -> dict[str, str | None]:
    """The installed versions, or a clear refusal when the stack is missing or is a pair hfprune has not tested.

    Raises:
        ExportUnavailableError: a package is missing, or optimum-intel / transformers are not the tested pair.
    """
    versions = installed_versions()
    missing = [name for name in ("optimum-intel", "optimum", "openvino", "nncf") if versions[name] is None]
    if missing:
        raise ExportUnavailableError(f"export to OpenVINO needs {', '.join(missing)}: {INSTALL_HINT}")
    transformers_version = versions["transformers"] or ""
    if versions["optimum-intel"] != OPTIMUM_INTEL_VERSION or not transformers_version.startswith(TRANSFORMERS_SERIES):
        raise ExportUnavailableError(
            f"hfprune's OpenVINO export is tested with optimum-intel {OPTIMUM_INTEL_VERSION} beside transformers "
            f"{TRANSFORMERS_SERIES}x; this environment has optimum-intel {versions['optimum-intel']} and "
            f"transformers {transformers_version}: install those versions ({INSTALL_HINT})"
        )
    return versions


def prepare() -> list[str]:
    """Check the versions, then apply every adjustment once (before optimum.intel is first imported); returns
    what was adjusted, for the export record."""
    check_versions()
    if not _applied:
        _import_names()
        _export_adjustments()
        _generation_adjustments()
    return list(_applied)


def _import_names() -> None:
    """optimum/intel/openvino/modeling_visual_language.py, imported by ``optimum.intel``, needs two names that
    transformers renamed or removed (vision-language models only, which hfprune never exports)."""
    qwen2_vl = importlib.import_module("transformers.models.qwen2_vl.modeling_qwen2_vl")
    if not hasattr(qwen2_vl, "VisionRotaryEmbedding"):
        qwen2_vl.VisionRotaryEmbedding = qwen2_vl.Qwen2VLVisionRotaryEmbedding
        _applied.append("qwen2_vl.VisionRotaryEmbedding = Qwen2VLVisionRotaryEmbedding (import)")
    for module, class_name in (
        ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLVisionModel"),
        ("transformers.models.qwen3_5.modeling_qwen3_5", "Qwen3_5VisionModel"),
    ):
        try:
            cls = getattr(importlib.import_module(module), class_name)
        except (ImportError, AttributeError):
            continue
        if not hasattr(cls, "rot_pos_emb"):
            cls.rot_pos_emb = _vision_only
            _applied.append(f"{class_name}.rot_pos_emb: raises (vision-language export unsupported)")


def _vision_only(*_: Any, **__: Any) -> None:
    raise ExportUnavailableError("vision-language models cannot be exported by hfprune under this transformers")


def _export_adjustments() -> None:
    from optimum.exporters.openvino import model_configs, patching_utils

    # The exporter inspects the forward signature for `past_key_values` and reads it from the outputs.
    patcher = patching_utils.ModelPatcher
    if not getattr(patcher, "_hfprune_adjusted", False):
        original_init = patcher.__init__

        def __init__(self: Any, config: Any, model: Any, *args: Any, **kwargs: Any) -> None:
            _present_cache_as_past_key_values(model)
            original_init(self, config, model, *args, **kwargs)

        patcher.__init__ = __init__
        patcher._hfprune_adjusted = True
        _applied.append("ModelPatcher: forward shows `past_key_values` for transformers' `cache` (export)")
    # transformers 5.25 calls layer.update(k, v, kwargs=...); optimum's traceable update takes (k, v, kwargs).
    update = patching_utils.patched_dynamic_layer_update
    if not getattr(update, "_hfprune_adjusted", False):

        def patched_dynamic_layer_update(self: Any, key_states: Any, value_states: Any, *_: Any, **__: Any) -> Any:
            return update(self, key_states, value_states)

        patched_dynamic_layer_update._hfprune_adjusted = True
        patching_utils.patched_dynamic_layer_update = patched_dynamic_layer_update
        _applied.append("patched_dynamic_layer_update accepts the new keyword arguments (export)")
    # Gemma's export config carries a cap of transformers 5.0 (a plain version check, lifted for 5.25.x only,
    # which the verification after every export then stands behind).
    gemma = model_configs.GemmaOpenVINOConfig
    if getattr(gemma, "MAX_TRANSFORMERS_VERSION", None) is not None:
        _applied.append(
            f"GemmaOpenVINOConfig.MAX_TRANSFORMERS_VERSION {gemma.MAX_TRANSFORMERS_VERSION} lifted (export)"
        )
        gemma.MAX_TRANSFORMERS_VERSION = None


class _Outputs(dict):
    """A dict read and written both as ``outputs["x"]`` and ``outputs.x`` (optimum's Gemma patcher does both)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as missing:
            raise AttributeError(name) from missing

    def __setattr__(self, name: str, value: Any) -> None:  # the patcher replaces outputs.past_key_values
        self[name] = value


def _present_cache_as_past_key_values(model: Any) -> None:
    forward = model.forward
    signature = inspect.signature(forward)
    if "cache" not in signature.parameters or "past_key_values" in signature.parameters:
        return
    renamed = [p.replace(name="past_key_values") if p.name == "cache" else p for p in signature.parameters.values()]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "past_key_values" in kwargs:
            kwargs["cache"] = kwargs.pop("past_key_values")
        outputs = forward(*args, **kwargs)
        if isinstance(outputs, dict) and "cache" in outputs:
            outputs = _Outputs(("past_key_values" if k == "cache" else k, v) for k, v in outputs.items())
        return outputs

    wrapped.__signature__ = signature.replace(parameters=renamed)  # type: ignore[attr-defined]
    model.forward = wrapped


def _generation_adjustments() -> None:
    from optimum.intel.openvino.modeling_decoder import OVModelForCausalLM

    # generate() in 5.25 asks every model for its experts implementation (a PreTrainedModel method).
    if not hasattr(OVModelForCausalLM, "get_experts_implementation"):
        OVModelForCausalLM.get_experts_implementation = lambda self: {}
        _applied.append("OVModelForCausalLM.get_experts_implementation (generate)")
    # generate() in 5.25 carries the cache as model_kwargs["cache"]; optimum reads only `past_key_values`, sees
    # no past, resets the stateful KV cache and re-feeds the whole sequence every step.
    prepare_inputs = OVModelForCausalLM.prepare_inputs_for_generation
    if not getattr(prepare_inputs, "_hfprune_adjusted", False):

        @functools.wraps(prepare_inputs)
        def prepare_inputs_for_generation(self: Any, input_ids: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
            cache = kwargs.pop("cache", None)
            return prepare_inputs(
                self, input_ids, past_key_values=cache if past_key_values is None else past_key_values, **kwargs
            )

        prepare_inputs_for_generation._hfprune_adjusted = True  # type: ignore[attr-defined]
        OVModelForCausalLM.prepare_inputs_for_generation = prepare_inputs_for_generation
        _applied.append("OVModelForCausalLM.prepare_inputs_for_generation reads `cache` (KV cache reused)")
