"""Names and defaults every room shares: file names, default settings, environment variables, data folders.

One place, so a file name is never spelled twice and a default never drifts between ``prune``, ``run`` and
``sweep``. Nothing here imports the rest of hfprune.
"""

from __future__ import annotations

import os
from pathlib import Path

VERSION = "0.1.0"

# --- files hfprune writes -------------------------------------------------------------------------------
#: What a pruning run did (method, parameters, calibration, per-layer sparsity, versions): beside the weights.
METADATA_FILE = "hfprune.json"
#: The model card, as the Hub names it.
CARD_FILE = "README.md"
#: Evaluation results copied into a model folder (and their plot), published with it.
RESULTS_FILE = "eval_results.json"
PLOT_FILE = "eval_results.png"
#: ``hfprune run``'s record of finished steps: a dot-file, never published.
LEDGER_FILE = ".hfprune-run.json"
#: This machine's facts about an output (the local base model's path): a dot-file, so never published.
LOCAL_RECORD = ".hfprune-local.json"
#: Marks a folder hfprune is still writing (with the writer's pid and host): a killed run's leftover.
PARTIAL_MARKER = ".hfprune-partial"
#: Inside an output while it is being replaced (``--overwrite``): the name it is swapped out under.
SWAP_MARKER = ".hfprune-swap"
#: Inside every output hfprune writes: the files its job wrote, so ``--overwrite`` can tell them from a user's.
WRITTEN_RECORD = ".hfprune-files.json"
#: A trimmed vocabulary's map: for every new token id, its id in the base model and why it was kept.
VOCAB_MAP_FILE = "vocab_map.json"
#: ``hfprune heal``'s checkpoints while it trains: a sibling of ``--out`` named ``<out>`` + this suffix.
HEAL_CHECKPOINT_SUFFIX = ".hfprune-heal"
#: Inside that folder: what hfprune wrote it for (step, settings, fingerprints), so --resume can check and success
#: can remove it (a folder without it is never touched).
HEAL_CHECKPOINT_RECORD = "hfprune-heal.json"
#: hfprune's record of an export (``hfprune export``): settings, verification, sizes, speeds; marks the folder.
EXPORT_RECORD = "hfprune_export.json"
#: Beside an exported IR: the OpenVINO properties to compile it with (sparse decompression), and why.
OPENVINO_RUNTIME_FILE = "openvino_runtime.json"
#: Where ``run --export openvino`` puts the export: a subfolder of the model, so a push publishes both.
OPENVINO_SUBFOLDER = "openvino"
#: The index of sharded safetensors weights (transformers' name).
WEIGHTS_INDEX = "model.safetensors.index.json"
#: The model card template in ``model_cards/``.
CARD_TEMPLATE = "model_cards/hfprune_model_card.md"
#: The comparison page in ``spaces/``: the folder and its entry file.
SPACE_FOLDER = "spaces/compare"
SPACE_APP_FILE = "app.py"

# --- defaults of a pruning run ----------------------------------------------------------------------------
DEFAULT_METHOD = "wanda"
DEFAULT_SPARSITY = 0.5
#: Tokens per calibration sample; never taken from the model's maximum (a 128k context would not fit).
DEFAULT_SEQLEN = 512
#: Samples drawn when the user gives no mix: spread evenly over the languages the source holds.
DEFAULT_TOTAL_SAMPLES = 128
#: Calibration samples per forward: the activation peak grows with it.
DEFAULT_BATCH_SIZE = 2
DEFAULT_SEED = 0
#: Structured pruning: how per-language importance is combined (``--lang-agg``; see pruning/structured/importance.py).
#: Pooled, as measured: on Gemma 3 270M it kept the worst language and the mean best at every width, and ``max``
#: chose far worse blocks for depth:4 (benchmarks/results/structured_gemma3-270m.md).
DEFAULT_LANG_AGG = "pooled"
#: Structured pruning: the prompt length of the tokens/s measurement recorded in hfprune.json (a calibration sample's start).
SPEED_PROMPT_TOKENS = 64
DEFAULT_MAX_SHARD_SIZE = "2GB"
#: ``hfprune heal``: tokens of healing text (128 samples of 512), the KD temperature and the KD share of the loss.
DEFAULT_HEAL_TOKENS = 65_536
DEFAULT_HEAL_TEMPERATURE = 2.0
DEFAULT_KD_WEIGHT = 0.5
#: Perplexity window (tokens, BOS included) and texts per forward in evaluation.
DEFAULT_CONTEXT_LENGTH = 512
DEFAULT_EVAL_BATCH_SIZE = 8

# --- environment ------------------------------------------------------------------------------------------
#: A data folder (``flores/``, ``calib/``, ``xcopa/`` ...) read before the data shipped with hfprune
#: (see hfprune/data_sources.py for the whole order).
DATA_DIR_ENV = "HFPRUNE_DATA_DIR"
#: Overrides the cache folder (trained tiny model, evaluation cache).
CACHE_DIR_ENV = "HFPRUNE_CACHE"
#: Seconds a rank waits for the others in a collective before it stops with an error (a rank died or hangs).
DIST_TIMEOUT_ENV = "HFPRUNE_DIST_TIMEOUT"
DEFAULT_DIST_TIMEOUT_S = 1800


def cache_dir() -> Path:
    """hfprune's own cache: ``$HFPRUNE_CACHE``, else ``$XDG_CACHE_HOME/hfprune``, else ``~/.cache/hfprune``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hfprune"
