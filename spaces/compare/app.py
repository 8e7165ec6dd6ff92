"""Dense vs pruned, side by side: a Gradio app that shows what pruning did to a model, language by language.

People judge a pruned model by reading what it writes in their language, so this page streams the dense and the
pruned model's continuations of the same prompt next to each other, and scores a prompt under both models to show
*where* the pruned one starts to differ.

Self-contained on purpose: a Hugging Face Space runs this file with only ``requirements.txt`` installed (gradio,
transformers, torch, huggingface_hub), never hfprune. Two ways in:

- on a Space (or ``python app.py``): the model ids come from the ``DENSE_MODEL`` / ``PRUNED_MODEL`` variables
  (``hfprune space deploy`` sets them); ``DENSE_MODEL`` may be left out when the pruned model's ``hfprune.json``
  names a base model on the Hub;
- from Python (``hfprune space serve``): ``build_app(dense=..., pruned=...)`` returns the queued Blocks.

Each model is loaded once per process (safetensors only, never remote code) and shared by every request; the
queue bounds concurrency so a CPU Space is not asked to run many generations at once.

Models bigger than one device: ``COMPARE_DEVICE_MAP`` (``auto``, ``balanced`` or ``sequential``), with
``COMPARE_MAX_MEMORY`` (``0=20GiB,cpu=64GiB``) and ``COMPARE_OFFLOAD_FOLDER``, lets accelerate spread each model
over the GPUs, the CPU and the disk (``build_app(device_map=..., max_memory=..., offload_folder=...)`` from Python).
The numbers are the same as with the model in one piece; only where the weights wait between forwards changes.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from huggingface_hub import hf_hub_download, snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

logger = logging.getLogger("compare")

# --- limits (enforced by the sliders in the page *and* again on the server, for API callers) ---------------------
MAX_PROMPT_CHARS = 2000
MAX_PROMPT_TOKENS = 512
MAX_NEW_TOKENS = 256
DEFAULT_NEW_TOKENS = 64
TEMPERATURE_MAX = 2.0
#: Below this, logits / temperature overflow to inf (1e-300 gives NaN probabilities): 0 means greedy instead.
TEMPERATURE_MIN = 0.01
TOP_P_MIN = 0.05
SEED_MAX = 2**31 - 1
#: A pruned token log-probability this far (in nats) from the dense one counts as a large gap in the Score tab.
GAP_NATS = 1.0
#: Generations running at once (each one drives both models), and requests allowed to wait behind them.
CONCURRENCY = int(os.environ.get("COMPARE_CONCURRENCY", "1"))
QUEUE_SIZE = int(os.environ.get("COMPARE_QUEUE_SIZE", "16"))

METADATA_FILE = "hfprune.json"
LOCAL_RECORD = ".hfprune-local.json"
PLOT_FILE = "eval_results.png"
DIVERGENCE_DEFINITION = (
    "The first divergence is the first prompt position whose next-token prediction (top-1, the argmax of the "
    "model's distribution given the tokens before it) differs between the dense and the pruned model. Positions "
    "count the prompt's tokens from 0; position 0 is never scored because nothing precedes it. A large gap is a "
    f"position where the two log-probabilities of the actual prompt token differ by more than {GAP_NATS:g} nat."
)

#: Example prompts for the languages of the shared FLORES evaluation set: code -> (name, prompts).
EXAMPLES: dict[str, tuple[str, list[str]]] = {
    "en": ("English", ["The best way to learn a new language is", "Once upon a time, in a small village by the sea,"]),
    "de": ("German", ["Der beste Weg, eine neue Sprache zu lernen, ist", "Es war einmal ein kleines Dorf am Meer, in dem"]),
    "fr": ("French", ["La meilleure façon d'apprendre une nouvelle langue, c'est", "Il était une fois, dans un petit village au bord de la mer,"]),
    "es": ("Spanish", ["La mejor manera de aprender un idioma nuevo es", "Había una vez, en un pequeño pueblo junto al mar,"]),
    "it": ("Italian", ["Il modo migliore per imparare una nuova lingua è", "C'era una volta, in un piccolo villaggio sul mare,"]),
    "pt": ("Portuguese", ["A melhor maneira de aprender uma nova língua é", "Era uma vez, numa pequena aldeia à beira-mar,"]),
    "ru": ("Russian", ["Лучший способ выучить новый язык —", "Жила-была в маленькой деревне у моря"]),
    "zh": ("Chinese", ["学习一门新语言最好的方法是", "很久以前，在海边的一个小村庄里，"]),
    "ja": ("Japanese", ["新しい言語を学ぶ一番の方法は", "昔々、海辺の小さな村に"]),
    "ar": ("Arabic", ["أفضل طريقة لتعلم لغة جديدة هي", "كان يا ما كان، في قرية صغيرة على شاطئ البحر،"]),
    "hi": ("Hindi", ["नई भाषा सीखने का सबसे अच्छा तरीका है", "बहुत समय पहले, समुद्र के किनारे एक छोटे से गाँव में"]),
    "sw": ("Swahili", ["Njia bora ya kujifunza lugha mpya ni", "Hapo zamani za kale, katika kijiji kidogo kando ya bahari,"]),
    "tr": ("Turkish", ["Yeni bir dil öğrenmenin en iyi yolu", "Bir zamanlar, deniz kenarındaki küçük bir köyde"]),
    "vi": ("Vietnamese", ["Cách tốt nhất để học một ngôn ngữ mới là", "Ngày xửa ngày xưa, ở một ngôi làng nhỏ bên bờ biển,"]),
    "id": ("Indonesian", ["Cara terbaik untuk belajar bahasa baru adalah", "Pada suatu hari, di sebuah desa kecil di tepi laut,"]),
    "th": ("Thai", ["วิธีที่ดีที่สุดในการเรียนภาษาใหม่คือ"]),
    "ta": ("Tamil", ["ஒரு புதிய மொழியைக் கற்றுக்கொள்ள சிறந்த வழி"]),
    "et": ("Estonian", ["Parim viis uut keelt õppida on", "Elas kord väikeses külas mere ääres"]),
    "ht": ("Haitian Creole", ["Pi bon fason pou aprann yon nouvo lang se"]),
    "qu": ("Quechua", ["Ñawpa pachapi, huk uchuy llaqtapi"]),
}  # fmt: skip


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


# --- models: loaded once per process ---------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """One causal LM with its tokenizer, shared by every request of this process."""

    model_id: str
    model: Any
    tokenizer: Any
    device: torch.device
    eos_ids: frozenset[int] = field(default_factory=frozenset)


_MODELS: dict[str, LoadedModel] = {}
_LOAD_LOCK = threading.Lock()
DEVICE_MAPS = ("auto", "balanced", "sequential")


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


def load_model(model_id: str, device: torch.device, placement: Placement | None = None) -> LoadedModel:
    """The model for ``model_id`` (a folder or a Hub id), loading it only the first time it is asked for."""
    with _LOAD_LOCK:
        key = f"{model_id}@{device}@{placement}"
        if key not in _MODELS:
            _MODELS[key] = _load(model_id, device, placement)
        return _MODELS[key]


#: What the page needs from a model repo (never pickled weights, never code).
DOWNLOAD_PATTERNS = [
    "*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json", "tokenizer*",
    "special_tokens_map.json", "added_tokens.json", "*.model", "vocab.*", "merges.txt", "chat_template.*",
    METADATA_FILE, PLOT_FILE,
]  # fmt: skip


def _download(model_id: str) -> str:
    """The repo's snapshot in the Hub cache (only what the page needs), downloaded once."""
    return snapshot_download(model_id, revision="main", allow_patterns=DOWNLOAD_PATTERNS)


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


class ModelPair:
    """The dense and the pruned model, loaded with retries; what the page says while they are not there.

    A Hub hiccup at start-up must not take the page down: after :data:`LOAD_ATTEMPTS` failed attempts (waits of
    :data:`LOAD_BACKOFF_S` seconds, doubling) the page starts anyway with a status line, and a background thread
    keeps retrying. Errors that a retry cannot fix are raised at once.
    """

    def __init__(self, dense: str, pruned: str, device: torch.device, placement: Placement | None = None) -> None:
        self.ids, self.device, self.placement = (dense, pruned), device, placement
        self.models: tuple[LoadedModel, LoadedModel] | None = None
        self.status = "loading the models ..."
        self._lock = threading.Lock()

    def load(self, attempts: int | None = None, backoff_s: float | None = None) -> bool:
        """Try to load both; ``True`` once they are there. Raises :class:`ModelLoadError` if it is permanent."""
        attempts = LOAD_ATTEMPTS if attempts is None else attempts
        backoff_s = LOAD_BACKOFF_S if backoff_s is None else backoff_s
        for attempt in range(max(1, attempts)):
            try:
                loaded = tuple(load_model(model_id, self.device, self.placement) for model_id in self.ids)
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


def _input_device(model: Any) -> torch.device:
    """Where a placed model takes its inputs: the device of its first module (the CPU when that is the disk)."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:  # it fitted on one device whole
        return next(model.parameters()).device
    first = next(iter(device_map.values()))
    if isinstance(first, int):
        return torch.device("cuda", first)
    return torch.device("cpu" if first in ("cpu", "disk") else first)


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
    eos = model.generation_config.eos_token_id
    eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    return LoadedModel(model_id, model, tokenizer, device, frozenset(eos_ids))


# --- what the pruned model says about itself (hfprune.json, the card's plot) ------------------------------------
def _model_file(model_id: str, filename: str) -> Path | None:
    """``filename`` from a model folder or its Hub repo; ``None`` when it has none (plain, non-hfprune models)."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    try:
        return Path(hf_hub_download(model_id, filename))
    except Exception:  # noqa: BLE001 - missing file, offline, no access: the header just says less
        return None


def read_pruned_record(pruned: str) -> dict[str, Any]:
    """The pruned model's ``hfprune.json`` (method, sparsity, calibration, base model), or ``{}``."""
    path = _model_file(pruned, METADATA_FILE)
    if path is None:
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: the header just says less
        return {}
    return record if isinstance(record, dict) else {}


def default_dense(record: dict[str, Any], pruned: str | None = None) -> str | None:
    """The base model the pruned one was made from, as recorded by hfprune: a Hub id, or a local folder whose
    path hfprune keeps beside a local pruned folder in a dot-file that is never published."""
    base = record.get("base_model") or {}
    if not isinstance(base, dict):
        return None
    if base.get("local"):
        local = Path(pruned or "").expanduser() / LOCAL_RECORD
        try:
            return json.loads(local.read_text(encoding="utf-8"))["base_model_path"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return base.get("id")


def header_markdown(dense: str, pruned: str, record: dict[str, Any]) -> str:
    """Both model ids and how the pruned one was made, as a short list."""
    rows = [("Dense model", f"`{dense}`"), ("Pruned model", f"`{pruned}`")]
    if record:
        achieved, target = record.get("achieved_sparsity"), record.get("target_sparsity")
        sparsity = (
            f"{achieved:.1%} of the pruned layers' weights are zero"
            if isinstance(achieved, (int, float))
            else "unknown"
        )
        if isinstance(target, (int, float)):
            sparsity += f" (target {target:.0%}, {record.get('structure', 'unstructured')})"
        calibration = record.get("calibration") or {}
        mix = calibration.get("mix") if calibration.get("used", True) else None
        structured = record.get("structured")
        if isinstance(structured, dict):  # whole neurons, heads or blocks removed: a smaller dense model, no zeros
            before, after = structured.get("params_before") or {}, structured.get("params_after") or {}
            sparsity = f"none: structures removed (`{structured.get('spec')}`)"
            if before.get("total") and after.get("total"):
                sparsity += f", {before['total']:,} -> {after['total']:,} parameters"
        if record.get("method"):
            rows += [
                ("Method", f"`{record.get('method', 'unknown')}`"),
                ("Sparsity", sparsity),
                ("Calibration mix", f"`{mix}`" if mix else "none (the method needs no calibration data)"),
            ]
        vocab = record.get("vocab") or {}
        if vocab:
            rows.append(
                (
                    "Vocabulary",
                    f"trimmed to the tokens of {', '.join(vocab.get('languages', []))}: "
                    f"{vocab.get('rows_after', 0):,} of {vocab.get('rows_before', 0):,} tokens kept",
                )
            )
    else:
        rows.append(("Pruning record", f"no `{METADATA_FILE}` found for the pruned model"))
    lines = "\n".join(f"- **{name}:** {value}" for name, value in rows)
    return f"## Dense vs pruned\n\n{lines}\n{size_markdown(record)}"


def size_markdown(record: dict[str, Any]) -> str:
    """Parameters, file bytes and (when hfprune measured them) tokens/s of the dense and the pruned model.

    Only a trimmed vocabulary changes these (pruned zeros are stored and multiplied like any weight); the numbers
    come from the pruned model's ``hfprune.json``. Tokens/s are shown only when they were measured, with how.
    """
    vocab = record.get("vocab") or {}
    if not vocab:
        return ""
    files = vocab.get("files") or {}
    speed = vocab.get("speed") or {}
    rows = [
        ("parameters", vocab.get("parameters_before"), vocab.get("parameters_after"), "{:,.0f}"),
        ("safetensors bytes", files.get("safetensors_bytes_before"), files.get("safetensors_bytes_after"), "{:,.0f}"),
    ]
    measured = "before" in speed and "after" in speed
    if measured:
        for key, label in (("prefill_tokens_per_s", "prefill tokens/s"), ("decode_tokens_per_s", "decode tokens/s")):
            rows.append((label, speed["before"].get(key), speed["after"].get(key), "{:,.1f}"))
    lines = [
        f"| {label} | {form.format(before)} | {form.format(after)} | {after / before:.2f}x |"
        for label, before, after, form in rows
        if isinstance(before, (int, float)) and isinstance(after, (int, float)) and before
    ]
    if not lines:
        return ""
    note = (
        f"\nTokens/s: {speed['after'].get('how', '')}, on {speed['after'].get('device', '?')} "
        f"({speed['after'].get('threads', '?')} threads), measured by hfprune when the model was made.\n"
        if measured
        else "\nGeneration speed was not measured when the model was made, so none is shown.\n"
    )
    table = "| | dense | pruned | ratio |\n|---|---:|---:|---:|\n" + "\n".join(lines) + "\n"
    return f"\n### Size and speed\n\n{table}{note}"


# --- validation --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Generation settings, already checked against the limits."""

    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int


def check_prompt(prompt: str | None, tokenizer: Any) -> list[int]:
    """The prompt's token ids, or a :class:`gr.Error` that says which limit it breaks."""
    text = prompt or ""
    if not text.strip():
        raise gr.Error("Type a prompt first (or pick an example for a language).")
    if len(text) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The prompt has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}. Shorten it.")
    ids = tokenizer(text).input_ids
    if len(ids) > MAX_PROMPT_TOKENS:
        raise gr.Error(f"The prompt is {len(ids)} tokens long; the limit is {MAX_PROMPT_TOKENS}. Shorten it.")
    return list(ids)


def check_settings(max_new_tokens: Any, temperature: Any, top_p: Any, seed: Any) -> Settings:
    """Re-check the sliders' bounds on the server: API clients do not go through the sliders."""

    def number(value: Any, name: str) -> float:
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise gr.Error(f"{name} must be a number, not {value!r}.") from None
        if math.isnan(result) or math.isinf(result):
            raise gr.Error(f"{name} must be a finite number.")
        return result

    new_tokens, temp, nucleus, seed_value = (
        number(max_new_tokens, "max_new_tokens"),
        number(temperature, "temperature"),
        number(top_p, "top_p"),
        number(seed, "seed"),
    )
    if not 1 <= new_tokens <= MAX_NEW_TOKENS or new_tokens != int(new_tokens):
        raise gr.Error(f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}; got {max_new_tokens}.")
    if not (temp == 0 or TEMPERATURE_MIN <= temp <= TEMPERATURE_MAX):
        raise gr.Error(
            f"temperature must be 0 (greedy) or between {TEMPERATURE_MIN:g} and {TEMPERATURE_MAX:g}; got {temperature}."
        )
    if not TOP_P_MIN <= nucleus <= 1:
        raise gr.Error(f"top_p must be between {TOP_P_MIN:g} and 1; got {top_p}.")
    if not 0 <= seed_value <= SEED_MAX or seed_value != int(seed_value):
        raise gr.Error(f"seed must be a whole number from 0 to {SEED_MAX}; got {seed}.")
    return Settings(int(new_tokens), temp, nucleus, int(seed_value))


# --- generation: both models, one token each in turn, so both outputs grow together ------------------------------
def sample_next(logits: torch.Tensor, settings: Settings, generator: torch.Generator) -> int:
    """Greedy at temperature 0; otherwise nucleus sampling from this stream's own seeded generator."""
    if settings.temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / settings.temperature, dim=-1)
    if settings.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= settings.top_p  # the top token is always kept
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


class TokenStream:
    """Generates one model's continuation a token at a time with its own KV cache, RNG and clock.

    A private ``torch.Generator`` (not the global RNG) makes the same seed give the same text for each model,
    whatever else the process is doing. ``seconds`` counts only this model's own forward passes, so the
    tokens/s shown for each model is its own speed even though the two models take turns.
    """

    def __init__(self, loaded: LoadedModel, prompt_ids: list[int], settings: Settings) -> None:
        self.loaded, self.settings = loaded, settings
        self.generator = torch.Generator(device=loaded.device).manual_seed(settings.seed)
        self.next_input = torch.tensor([prompt_ids], device=loaded.device)
        self.cache: Any = DynamicCache()
        self.ids: list[int] = []
        self.seconds = 0.0
        self.done = False

    @torch.inference_mode()
    def step(self) -> None:
        started = time.perf_counter()
        out = self.loaded.model(
            input_ids=self.next_input, use_cache=True, **_cache_argument(self.loaded.model, self.cache)
        )
        self.cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        token = sample_next(out.logits[0, -1].float(), self.settings, self.generator)
        self.seconds += time.perf_counter() - started
        if token in self.loaded.eos_ids:
            self.done = True
            return
        self.ids.append(token)
        self.next_input = torch.tensor([[token]], device=self.loaded.device)
        self.done = len(self.ids) >= self.settings.max_new_tokens

    @property
    def text(self) -> str:
        return visible_text(self.loaded.tokenizer, self.ids)

    @property
    def stats(self) -> str:
        rate = len(self.ids) / self.seconds if self.seconds > 0 else 0.0
        state = "done" if self.done else "generating"
        return f"{len(self.ids)} tokens · **{rate:.1f} tokens/s** · {state}"


def visible_text(tokenizer: Any, ids: list[int]) -> str:
    """The text of ``ids`` as the page shows it: a character whose bytes are not all generated yet (a byte-level
    token can end inside a multi-byte character, as in German, Chinese or Hindi text) is held back, so every
    update only ever extends the previous one and no U+FFFD flashes up. A generation cut inside a character
    by the token limit ends before it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    return text.rstrip("\ufffd")


def _cache_argument(model: Any, cache: Any) -> dict[str, Any]:
    """The KV cache under the name this transformers takes (``cache``; ``past_key_values`` before 5.x renamed it)."""
    names = inspect.signature(model.forward).parameters
    return {"cache": cache} if "cache" in names else {"past_key_values": cache}


def stream_pair(
    dense: LoadedModel, pruned: LoadedModel, prompt: str, settings: Settings
) -> Iterator[tuple[str, str, str, str]]:
    """(dense text, pruned text, dense stats, pruned stats) after every token of either model."""
    streams = [TokenStream(m, check_prompt(prompt, m.tokenizer), settings) for m in (dense, pruned)]
    while not all(s.done for s in streams):
        for stream in streams:
            if not stream.done:
                stream.step()
        yield streams[0].text, streams[1].text, streams[0].stats, streams[1].stats


# --- scoring: where the pruned model starts to differ -------------------------------------------------------------
@torch.inference_mode()
def token_scores(loaded: LoadedModel, ids: list[int]) -> tuple[list[float], list[int]]:
    """Log-probability of each prompt token after the first, and the model's top-1 guess at each position."""
    input_ids = torch.tensor([ids], device=loaded.device)
    logprobs = torch.log_softmax(loaded.model(input_ids=input_ids).logits[0, :-1].float(), dim=-1)
    actual = logprobs.gather(1, input_ids[0, 1:, None])[:, 0]
    return actual.tolist(), logprobs.argmax(-1).tolist()


def score_prompt(dense: LoadedModel, pruned: LoadedModel, prompt: str) -> dict[str, Any]:
    """Per-token log-likelihood of ``prompt`` under both models and the first positions where they part ways."""
    ids = check_prompt(prompt, dense.tokenizer)
    pruned_ids = check_prompt(prompt, pruned.tokenizer)
    # A trimmed vocabulary numbers tokens differently: the same split into the same token strings is what counts.
    if dense.tokenizer.convert_ids_to_tokens(ids) != pruned.tokenizer.convert_ids_to_tokens(pruned_ids):
        raise gr.Error(
            "The two models split this prompt into different tokens, so they cannot be compared token by token."
        )
    if len(ids) < 2:
        raise gr.Error("The prompt needs at least two tokens to score; type a few more words.")
    dense_lp, dense_top = token_scores(dense, ids)
    pruned_lp, pruned_ids_top = token_scores(pruned, pruned_ids)
    # Top-1 guesses as dense-model ids, so that they compare whatever each model's numbering (-1: no such token).
    dense_vocab = dense.tokenizer.get_vocab()
    pruned_top = [dense_vocab.get(t, -1) for t in pruned.tokenizer.convert_ids_to_tokens(pruned_ids_top)]
    decode = dense.tokenizer.decode
    rows = [
        {
            "position": i,
            "token": decode([ids[i]]),
            "dense_logprob": round(dense_lp[i - 1], 4),
            "pruned_logprob": round(pruned_lp[i - 1], 4),
            "delta": round(pruned_lp[i - 1] - dense_lp[i - 1], 4),
            "dense_top1": decode([dense_top[i - 1]]),
            "pruned_top1": pruned.tokenizer.decode([pruned_ids_top[i - 1]]),
        }
        for i in range(1, len(ids))
    ]
    # Token ids, not their text, decide a divergence: two different tokens can decode to the same string.
    first_top1 = next((rows[i] for i in range(len(rows)) if dense_top[i] != pruned_top[i]), None)
    first_gap = next(
        (r for r in rows if abs(pruned_lp[r["position"] - 1] - dense_lp[r["position"] - 1]) > GAP_NATS), None
    )
    return {
        "tokens_scored": len(rows),
        "dense": _totals(dense_lp),
        "pruned": _totals(pruned_lp),
        "first_divergence": first_top1,
        "first_large_gap": first_gap,
        "gap_threshold_nats": GAP_NATS,
        "definition": DIVERGENCE_DEFINITION,
        "rows": rows,
    }


def _totals(logprobs: list[float]) -> dict[str, float]:
    total = sum(logprobs)
    return {
        "total_logprob": round(total, 4),
        "mean_logprob": round(total / len(logprobs), 4),
        "perplexity": round(math.exp(-total / len(logprobs)), 4),
    }


def score_summary(result: dict[str, Any]) -> str:
    """One paragraph for people: where the models first disagree, and the totals."""
    d, p = result["dense"], result["pruned"]
    first = result["first_divergence"]
    where = (
        f"The pruned model's top-1 prediction first differs at **position {first['position']}** (token "
        f"`{first['token']!r}`): dense expects `{first['dense_top1']!r}`, pruned `{first['pruned_top1']!r}`."
        if first
        else "The two models make the same top-1 prediction at every position of this prompt."
    )
    gap = result["first_large_gap"]
    gap_text = (
        f" The first log-probability gap above {GAP_NATS:g} nat is at position {gap['position']}"
        f" (Δ {gap['delta']:+.2f})."
        if gap
        else f" No position differs by more than {GAP_NATS:g} nat."
    )
    return (
        f"{where}{gap_text}\n\nOver {result['tokens_scored']} scored tokens: dense log-likelihood "
        f"{d['total_logprob']:.2f} (perplexity {d['perplexity']:.2f}), pruned {p['total_logprob']:.2f} "
        f"(perplexity {p['perplexity']:.2f}).\n\n*{DIVERGENCE_DEFINITION}*"
    )


# --- the page ---------------------------------------------------------------------------------------------------
LANGUAGE_CHOICES = [(f"{name} ({code})", code) for code, (name, _) in EXAMPLES.items()]
SCORE_COLUMNS = ["position", "token", "dense_logprob", "pruned_logprob", "delta", "dense_top1", "pruned_top1"]


def _ui_errors(fn_name: str, error: Exception) -> gr.Error:
    """Anything unexpected becomes a one-line message in the page; the traceback stays in the server log."""
    logger.exception("%s failed", fn_name)
    return gr.Error(
        f"{fn_name} failed ({type(error).__name__}). Try a shorter prompt or fewer tokens; "
        "if it keeps failing, the Space logs have the details."
    )


def build_app(
    dense: str | None = None,
    pruned: str | None = None,
    *,
    device: str | None = None,
    device_map: str | None = None,
    max_memory: str | None = None,
    offload_folder: str | None = None,
) -> gr.Blocks:
    """Load both models (once per process) and return the queued page comparing them.

    ``None`` reads ``DENSE_MODEL`` / ``PRUNED_MODEL`` from the environment; a missing dense model defaults to the
    base model recorded in the pruned model's ``hfprune.json``. ``device_map`` (or ``COMPARE_DEVICE_MAP``) with
    ``max_memory`` and ``offload_folder`` spreads each model over the GPUs, CPU and disk.

    A model the Hub fails to serve right now does not stop the page: it starts with a status line and keeps
    retrying in the background (see :class:`ModelPair`).

    Raises:
        ModelLoadError: no pruned model given, no dense model known, or a model that can never be loaded.
    """
    pruned = pruned or os.environ.get("PRUNED_MODEL")
    if not pruned:
        raise ModelLoadError("no pruned model: set PRUNED_MODEL (a Space variable) or pass pruned=...")
    record = read_pruned_record(pruned)
    dense = dense or os.environ.get("DENSE_MODEL") or default_dense(record, pruned)
    if not dense:
        raise ModelLoadError(f"no dense model: set DENSE_MODEL, or pass dense=...; {pruned} records no base model")
    where = pick_device(device or os.environ.get("COMPARE_DEVICE"))
    placement = Placement.parse(
        device_map or os.environ.get("COMPARE_DEVICE_MAP"),
        max_memory or os.environ.get("COMPARE_MAX_MEMORY"),
        offload_folder or os.environ.get("COMPARE_OFFLOAD_FOLDER"),
    )
    models = ModelPair(dense, pruned, where, placement)
    if not models.load():
        models.keep_trying()
    plot = _model_file(pruned, PLOT_FILE)

    def generate(
        prompt: str, max_new_tokens: float, temperature: float, top_p: float, seed: float
    ) -> Iterator[tuple[str, str, str, str]]:
        settings = check_settings(max_new_tokens, temperature, top_p, seed)
        dense_model, pruned_model = models.require()
        try:
            yield from stream_pair(dense_model, pruned_model, prompt, settings)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001 - shown as a message, never as a stack trace
            raise _ui_errors("Generation", error) from error

    def score(prompt: str) -> tuple[str, dict[str, Any], list[list[Any]], Any]:
        dense_model, pruned_model = models.require()
        try:
            result = score_prompt(dense_model, pruned_model, prompt)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001
            raise _ui_errors("Scoring", error) from error
        table = [[row[c] for c in SCORE_COLUMNS] for row in result["rows"]]
        summary = {k: v for k, v in result.items() if k != "rows"}
        return score_summary(result), summary, table, _plot_frame(result["rows"])

    def pick_language(code: str) -> tuple[Any, str, str]:
        prompts = EXAMPLES.get(code, EXAMPLES["en"])[1]
        return gr.update(choices=prompts, value=prompts[0]), prompts[0], prompts[0]

    with gr.Blocks(title="Dense vs pruned", analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(dense, pruned, record), elem_id="header")
        status = gr.Markdown(models.status_markdown(), elem_id="status")
        if plot is not None:
            gr.Image(value=str(plot), label="Per-language results (from the model card)", interactive=False, height=320)
        with gr.Tab("Generate"):
            with gr.Row():
                language = gr.Dropdown(LANGUAGE_CHOICES, value="en", label="Language", elem_id="language")
                example = gr.Dropdown(
                    EXAMPLES["en"][1], value=EXAMPLES["en"][1][0], label="Example prompt", elem_id="example"
                )
            prompt = gr.Textbox(
                EXAMPLES["en"][1][0],
                label=f"Prompt (up to {MAX_PROMPT_CHARS} characters)",
                lines=3,
                max_length=MAX_PROMPT_CHARS,
                elem_id="prompt",
            )
            with gr.Accordion("Settings", open=False), gr.Row():
                max_new = gr.Slider(1, MAX_NEW_TOKENS, value=DEFAULT_NEW_TOKENS, step=1, label="Max new tokens")
                temperature = gr.Slider(0, TEMPERATURE_MAX, value=0.7, step=0.05, label="Temperature (0 = greedy)")
                top_p = gr.Slider(TOP_P_MIN, 1, value=0.95, step=0.05, label="Top-p")
                seed = gr.Number(0, minimum=0, maximum=SEED_MAX, precision=0, label="Seed (same seed, same text)")
            run = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Row(equal_height=True):
                with gr.Column():
                    dense_out = gr.Textbox(
                        label=f"Dense · {dense}", lines=10, interactive=False, elem_id="dense-output"
                    )
                    dense_stats = gr.Markdown(elem_id="dense-stats")
                with gr.Column():
                    pruned_out = gr.Textbox(
                        label=f"Pruned · {pruned}", lines=10, interactive=False, elem_id="pruned-output"
                    )
                    pruned_stats = gr.Markdown(elem_id="pruned-stats")
        with gr.Tab("Score"):
            gr.Markdown(
                "Scores the prompt under both models, token by token: where does the pruned model stop "
                "agreeing with the dense one?"
            )
            score_text = gr.Textbox(
                EXAMPLES["en"][1][0],
                label="Prompt to score",
                lines=3,
                max_length=MAX_PROMPT_CHARS,
                elem_id="score-prompt",
            )
            score_button = gr.Button("Score", elem_id="score")
            score_md = gr.Markdown(elem_id="score-summary")
            score_plot = gr.LinePlot(
                x="position",
                y="logprob",
                color="model",
                title="Log-probability of each prompt token",
                label="Per-token log-probability",
            )
            score_table = gr.Dataframe(headers=SCORE_COLUMNS, label="Per-token log-probabilities", interactive=False)
            score_json = gr.JSON(label="Summary (also what the API returns)")

        # Picking a language or an example only fills text boxes: no queue, so it never waits behind a generation.
        language.change(pick_language, language, [example, prompt, score_text], api_visibility="private", queue=False)
        example.input(lambda text: (text, text), example, [prompt, score_text], api_visibility="private", queue=False)
        # Generating and scoring share one concurrency group: at most CONCURRENCY of them use the models at once.
        run.click(
            generate,
            [prompt, max_new, temperature, top_p, seed],
            [dense_out, pruned_out, dense_stats, pruned_stats],
            api_name="generate",
            concurrency_id="models",
        )
        score_button.click(
            score,
            score_text,
            [score_md, score_json, score_table, score_plot],
            api_name="score",
            concurrency_id="models",
        )
        demo.load(models.status_markdown, None, status, api_visibility="private", queue=False)
    demo.models = models  # type: ignore[attr-defined]  (for tests and hfprune space serve)
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


def _plot_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd  # a gradio dependency; only the plot needs it

    long = [
        {"position": r["position"], "logprob": r[f"{m}_logprob"], "model": m} for r in rows for m in ("dense", "pruned")
    ]
    return pd.DataFrame(long, columns=["position", "logprob", "model"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        app = build_app()
    except ModelLoadError as err:
        raise SystemExit(f"error: {err}") from None
    app.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
