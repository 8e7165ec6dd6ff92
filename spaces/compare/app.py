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

``PRUNED_RUNTIME=openvino`` (``hfprune space serve|deploy --pruned-runtime openvino``) runs the pruned side from
its OpenVINO export (the repo's ``openvino/`` folder, written by ``hfprune export``) on the CPU, with the runtime
settings beside it: users compare what they would actually run. The Space then needs optimum-intel, which
``deploy`` adds to its requirements.

Each model is loaded once per process (safetensors only, never remote code) and shared by every request; the
queue bounds concurrency so a CPU Space is not asked to run many generations at once.

Models bigger than one device: ``COMPARE_DEVICE_MAP`` (``auto``, ``balanced`` or ``sequential``), with
``COMPARE_MAX_MEMORY`` (``0=20GiB,cpu=64GiB``) and ``COMPARE_OFFLOAD_FOLDER``, lets accelerate spread each model
over the GPUs, the CPU and the disk (``build_app(device_map=..., max_memory=..., offload_folder=...)`` from Python).
The numbers are the same as with the model in one piece; only where the weights wait between forwards changes.

The page is split by job into files beside this one, each prefixed ``compare_`` so that no generic name
(``layout``, ``generation``) can clash with another installed module: ``compare_record`` (the pruned model's
``hfprune.json`` and the header it makes), ``compare_loading`` (the two models, loaded once, with retries),
``compare_limits`` (what a request may ask for), ``compare_generation`` (side-by-side streaming),
``compare_scoring`` (where the pruned model starts to differ) and ``compare_layout`` (the Blocks,
:func:`build_app`). They import one another by those plain names, which works because the folder is on
``sys.path``: a Space runs ``python app.py`` from it, and ``hfprune space serve`` puts it there while it loads
this file. This file is the entry point and re-exports the names callers use. The settings read from the
environment at import (``COMPARE_LOAD_*``, ``COMPARE_RELOAD_S``, ``COMPARE_CONCURRENCY``, ``COMPARE_QUEUE_SIZE``)
are left out on purpose: a copy here would not change what the module that reads them does.
"""

from __future__ import annotations

import logging
import os

from compare_generation import TokenStream, sample_next, stream_pair, visible_text
from compare_layout import EXAMPLES, LANGUAGE_CHOICES, SCORE_COLUMNS, build_app
from compare_limits import (
    DEFAULT_NEW_TOKENS,
    MAX_NEW_TOKENS,
    MAX_PROMPT_CHARS,
    MAX_PROMPT_TOKENS,
    SEED_MAX,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    TOP_P_MIN,
    Settings,
    check_prompt,
    check_settings,
)
from compare_loading import (
    DEVICE_MAPS,
    DOWNLOAD_PATTERNS,
    LoadedModel,
    ModelLoadError,
    ModelPair,
    Placement,
    load_model,
    pick_device,
)
from compare_record import (
    LOCAL_RECORD,
    METADATA_FILE,
    PLOT_FILE,
    default_dense,
    header_markdown,
    model_file,
    read_pruned_record,
    size_markdown,
)
from compare_scoring import DIVERGENCE_DEFINITION, GAP_NATS, score_prompt, score_summary, token_scores

__all__ = [
    "DEFAULT_NEW_TOKENS",
    "DEVICE_MAPS",
    "DIVERGENCE_DEFINITION",
    "DOWNLOAD_PATTERNS",
    "EXAMPLES",
    "GAP_NATS",
    "LANGUAGE_CHOICES",
    "LOCAL_RECORD",
    "MAX_NEW_TOKENS",
    "MAX_PROMPT_CHARS",
    "MAX_PROMPT_TOKENS",
    "METADATA_FILE",
    "PLOT_FILE",
    "SCORE_COLUMNS",
    "SEED_MAX",
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "TOP_P_MIN",
    "LoadedModel",
    "ModelLoadError",
    "ModelPair",
    "Placement",
    "Settings",
    "TokenStream",
    "build_app",
    "check_prompt",
    "check_settings",
    "default_dense",
    "header_markdown",
    "load_model",
    "model_file",
    "pick_device",
    "read_pruned_record",
    "sample_next",
    "score_prompt",
    "score_summary",
    "size_markdown",
    "stream_pair",
    "token_scores",
    "visible_text",
]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        app = build_app()
    except ModelLoadError as err:
        raise SystemExit(f"error: {err}") from None
    app.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
