"""The dense and the pruned model: loaded once per process, safetensors only, never remote code, with retries.

Every request of the page shares the same two models. A Hub hiccup at start-up must not take the page down, so
loading sorts failures into those a retry may fix and those it cannot (:class:`ModelLoadError`), and
:class:`ModelPair` keeps trying in the background. :class:`Placement` spreads a model too big for one device
over the GPUs, the CPU and the disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from huggingface_hub import snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer

from compare_record import METADATA_FILE, PLOT_FILE

logger = logging.getLogger("compare")

#: Loading a model: attempts at start-up and the first wait (doubling after each failure); while the Hub keeps
#: failing the page still starts, says so, and retries in the background every ``COMPARE_RELOAD_S`` seconds.
LOAD_ATTEMPTS = int(os.environ.get("COMPARE_LOAD_ATTEMPTS", "4"))
LOAD_BACKOFF_S = float(os.environ.get("COMPARE_LOAD_BACKOFF_S", "2"))
RELOAD_EVERY_S = float(os.environ.get("COMPARE_RELOAD_S", "60"))


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded. ``permanent``: retrying cannot help (no such folder or repo, no access,
    no safetensors); otherwise it may be a hiccup of the Hub or the network."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class LoadedModel:
    """One causal LM with its tokenizer, shared by every request of this process."""

    model_id: str
    model: Any
    tokenizer: Any
    device: torch.device
    eos_ids: frozenset[int] = field(default_factory=frozenset)
    #: "pytorch", or "openvino": the model's OpenVINO export (``hfprune export``), what a CPU user would run
    runtime: str = "pytorch"


DEVICE_MAPS = ("auto", "balanced", "sequential")
RUNTIMES = ("pytorch", "openvino")
#: Where ``hfprune run --export openvino`` / ``hfprune export DIR --out DIR/openvino`` put the export, and the
#: runtime settings beside it (sparse decompression), as hfprune names them.
OPENVINO_SUBFOLDER = "openvino"
OPENVINO_RUNTIME_FILE = "openvino_runtime.json"


@dataclass(frozen=True)
class Placement:
    """accelerate's placement of a model too big for one device: strategy, memory per device, disk folder."""

    device_map: str
    max_memory: tuple[tuple[Any, str], ...] = ()
    offload_folder: str | None = None

    @classmethod
    def parse(
        cls, device_map: str | None, max_memory: str | None = None, offload_folder: str | None = None
    ) -> Placement | None:
        """``None`` without a device map; ``max_memory`` like ``0=20GiB,cpu=64GiB``."""
        if not device_map:
            return None
        if device_map not in DEVICE_MAPS:
            raise ModelLoadError(f"unknown device map {device_map!r}; choose one of {', '.join(DEVICE_MAPS)}")
        limits = []
        for part in (p.strip() for p in (max_memory or "").split(",") if p.strip()):
            key, sep, size = part.partition("=")
            if not sep or not re.fullmatch(r"cpu|mps|xpu|\d+", key.strip()) or not size.strip():
                raise ModelLoadError(f"max memory entry {part!r} is not DEVICE=SIZE, e.g. 0=20GiB,cpu=64GiB")
            limits.append((int(key) if key.strip().isdigit() else key.strip(), size.strip()))
        return cls(device_map, tuple(limits), offload_folder or None)

    def kwargs(self) -> dict[str, Any]:
        folder = tempfile.mkdtemp(prefix="compare-offload-", dir=self.offload_folder)
        return {"device_map": self.device_map, "max_memory": dict(self.max_memory) or None, "offload_folder": folder}


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else the first GPU when there is one: small models run on CPU Spaces too."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ModelPair:
    """The dense and the pruned model, loaded with retries; what the page says while they are not there.

    A Hub hiccup at start-up must not take the page down: after :data:`LOAD_ATTEMPTS` failed attempts (waits of
    :data:`LOAD_BACKOFF_S` seconds, doubling) the page starts anyway with a status line, and a background thread
    keeps retrying. Errors that a retry cannot fix are raised at once.
    """

    def __init__(
        self,
        dense: str,
        pruned: str,
        device: torch.device,
        placement: Placement | None = None,
        pruned_runtime: str = "pytorch",
    ) -> None:
        if pruned_runtime not in RUNTIMES:
            raise ModelLoadError(
                f"unknown runtime {pruned_runtime!r} for the pruned model; choose one of {', '.join(RUNTIMES)}"
            )
        self.ids, self.device, self.placement = (dense, pruned), device, placement
        self.runtimes = ("pytorch", pruned_runtime)
        self.models: tuple[LoadedModel, LoadedModel] | None = None
        self.status = "loading the models ..."
        self._lock = threading.Lock()

    def load(self, attempts: int | None = None, backoff_s: float | None = None) -> bool:
        """Try to load both; ``True`` once they are there. Raises :class:`ModelLoadError` if it is permanent."""
        attempts = LOAD_ATTEMPTS if attempts is None else attempts
        backoff_s = LOAD_BACKOFF_S if backoff_s is None else backoff_s
        for attempt in range(max(1, attempts)):
            try:
                loaded = tuple(
                    load_model(model_id, self.device, self.placement, runtime)
                    for model_id, runtime in zip(self.ids, self.runtimes)
                )
            except ModelLoadError as err:
                if err.permanent:
                    raise
                with self._lock:
                    self.status = f"the models could not be loaded yet ({err}); retrying"
                logger.warning("loading failed (attempt %d of %d): %s", attempt + 1, attempts, err)
                if attempt + 1 < attempts:
                    time.sleep(backoff_s * 2**attempt)
                continue
            with self._lock:
                self.models, self.status = loaded, ""  # type: ignore[assignment]
            return True
        return False

    def keep_trying(self, every_s: float | None = None) -> threading.Thread:
        """Retry in the background until both models are loaded (a permanent error stops it, with its message)."""
        every_s = RELOAD_EVERY_S if every_s is None else every_s

        def retry() -> None:
            while self.models is None:
                time.sleep(every_s)
                try:
                    self.load(attempts=1)
                except ModelLoadError as err:
                    with self._lock:
                        self.status = f"the models cannot be loaded: {err}"
                    return

        thread = threading.Thread(target=retry, name="compare-model-loader", daemon=True)
        thread.start()
        return thread

    def require(self) -> tuple[LoadedModel, LoadedModel]:
        """Both models, or a message for the page that says why they are not there yet."""
        if self.models is None:
            raise gr.Error(f"The models are not available: {self.status}. Try again in a minute.")
        return self.models

    def status_markdown(self) -> str:
        return "" if self.models is not None else f"**Status:** {self.status}. The page retries on its own."


_MODELS: dict[str, LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def load_model(
    model_id: str, device: torch.device, placement: Placement | None = None, runtime: str = "pytorch"
) -> LoadedModel:
    """The model for ``model_id`` (a folder or a Hub id), loading it only the first time it is asked for."""
    with _LOAD_LOCK:
        key = f"{model_id}@{device}@{placement}@{runtime}"
        if key not in _MODELS:
            _MODELS[key] = _load_openvino(model_id) if runtime == "openvino" else _load(model_id, device, placement)
        return _MODELS[key]


def _load(model_id: str, device: torch.device, placement: Placement | None = None) -> LoadedModel:
    folder = Path(model_id).expanduser()
    if folder.is_dir() and not any(folder.glob("*.safetensors")):
        raise ModelLoadError(
            f"'{model_id}' holds no *.safetensors weights; this app never loads pickled weights. Save the model "
            "with save_pretrained(..., safe_serialization=True)"
        )
    dtype = (
        torch.float32 if device.type == "cpu" else (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    )
    try:
        source = str(folder) if folder.is_dir() else _download(model_id)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        placed = placement.kwargs() if placement is not None else {}
        model = AutoModelForCausalLM.from_pretrained(
            source, use_safetensors=True, trust_remote_code=False, dtype=dtype, **placed
        )
    except Exception as err:  # noqa: BLE001 - sorted below into what a retry can and cannot fix
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        permanent = folder.is_dir() or _is_permanent(err)
        raise ModelLoadError(
            f"cannot load '{model_id}' as a causal LM with safetensors weights ({first_line}). Pass a model folder "
            "or a Hub id OWNER/NAME you can read (set HF_TOKEN for a private or gated repo)",
            permanent=permanent,
        ) from err
    if placement is None:
        model.to(device)
    else:
        device = _input_device(model)
    model.eval()
    return LoadedModel(model_id, model, tokenizer, device, _eos_ids(model, tokenizer))


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    eos = model.generation_config.eos_token_id
    eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    return frozenset(eos_ids)


def _load_openvino(model_id: str) -> LoadedModel:
    """The OpenVINO export in ``model_id``'s ``openvino/`` folder (or ``model_id`` itself when it is one), on the
    CPU, compiled with the properties of its ``openvino_runtime.json`` (sparse decompression). optimum-intel runs
    it unchanged beside transformers<5.6 (a Space's requirements); ``hfprune space serve`` adjusts it for newer."""
    folder = Path(model_id).expanduser()
    try:
        if not folder.is_dir():
            folder = Path(_download(model_id, [f"{OPENVINO_SUBFOLDER}/*"]))
        if (folder / OPENVINO_SUBFOLDER / "openvino_model.xml").is_file():
            folder = folder / OPENVINO_SUBFOLDER
        if not (folder / "openvino_model.xml").is_file():
            raise ModelLoadError(
                f"'{model_id}' has no OpenVINO export ({OPENVINO_SUBFOLDER}/openvino_model.xml); make one with "
                f"`hfprune export MODEL --to openvino --out MODEL/{OPENVINO_SUBFOLDER}` and push it, or serve the "
                "pruned model with the pytorch runtime"
            )
        from optimum.intel import OVModelForCausalLM

        runtime_file = folder / OPENVINO_RUNTIME_FILE
        ov_config = json.loads(runtime_file.read_text(encoding="utf-8"))["ov_config"] if runtime_file.is_file() else {}
        model = OVModelForCausalLM.from_pretrained(str(folder), export=False, ov_config=ov_config)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except ModelLoadError:
        raise
    except ImportError as err:
        raise ModelLoadError("the openvino runtime needs optimum-intel: pip install 'optimum-intel[openvino]'") from err
    except Exception as err:  # noqa: BLE001 - sorted like the PyTorch load's
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot load the OpenVINO export of '{model_id}' ({first_line})",
            permanent=Path(model_id).expanduser().is_dir() or _is_permanent(err),
        ) from err
    return LoadedModel(model_id, model, tokenizer, torch.device("cpu"), _eos_ids(model, tokenizer), runtime="openvino")


def _input_device(model: Any) -> torch.device:
    """Where a placed model takes its inputs: the device of its first module (the CPU when that is the disk)."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:  # it fitted on one device whole
        return next(model.parameters()).device
    first = next(iter(device_map.values()))
    if isinstance(first, int):
        return torch.device("cuda", first)
    return torch.device("cpu" if first in ("cpu", "disk") else first)


#: What the page needs from a model repo (never pickled weights, never code).
DOWNLOAD_PATTERNS = [
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.model",
    "vocab.*",
    "merges.txt",
    "chat_template.*",
    METADATA_FILE,
    PLOT_FILE,
]


def _download(model_id: str, patterns: list[str] | None = None) -> str:
    """The repo's snapshot in the Hub cache (only what the page needs), downloaded once."""
    return snapshot_download(model_id, revision="main", allow_patterns=patterns or DOWNLOAD_PATTERNS)


def _is_permanent(error: BaseException | None) -> bool:
    """A missing repo, revision or file, or no access: the same answer every time. Anything else (a refused
    connection, a 5xx, a timeout) may pass."""
    from huggingface_hub import errors as hub_errors

    final = (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError, hub_errors.EntryNotFoundError)
    while error is not None:
        if isinstance(error, final) and not isinstance(error, hub_errors.LocalEntryNotFoundError):
            return True
        if isinstance(error, (ValueError, KeyError)) and not isinstance(error, OSError):
            return True  # transformers cannot build this model: retrying changes nothing
        error = error.__cause__ or error.__context__
    return False
