"""The page: the gradio Blocks with the Generate and Score tabs, and :func:`build_app`, which makes it.

:func:`build_app` reads which models to compare (arguments, else the Space's variables), loads them and wires
the tabs to generation and scoring. Unexpected errors reach visitors as one line; the traceback stays in the
server log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import gradio as gr

from compare_generation import stream_pair
from compare_limits import (
    DEFAULT_NEW_TOKENS,
    MAX_NEW_TOKENS,
    MAX_PROMPT_CHARS,
    SEED_MAX,
    TEMPERATURE_MAX,
    TOP_P_MIN,
    check_settings,
)
from compare_loading import ModelLoadError, ModelPair, Placement, pick_device
from compare_record import PLOT_FILE, default_dense, header_markdown, model_file, read_pruned_record
from compare_scoring import score_prompt, score_summary

logger = logging.getLogger("compare")

#: Generations running at once (each one drives both models), and requests allowed to wait behind them.
CONCURRENCY = int(os.environ.get("COMPARE_CONCURRENCY", "1"))
QUEUE_SIZE = int(os.environ.get("COMPARE_QUEUE_SIZE", "16"))

#: Example prompts for the languages of the shared FLORES evaluation set: code -> (name, prompts).
EXAMPLES: dict[str, tuple[str, list[str]]] = {
    "en": ("English", ["The best way to learn a new language is", "Once upon a time, in a small village by the sea,"]),
    "de": (
        "German",
        ["Der beste Weg, eine neue Sprache zu lernen, ist", "Es war einmal ein kleines Dorf am Meer, in dem"],
    ),
    "fr": (
        "French",
        [
            "La meilleure façon d'apprendre une nouvelle langue, c'est",
            "Il était une fois, dans un petit village au bord de la mer,",
        ],
    ),
    "es": (
        "Spanish",
        ["La mejor manera de aprender un idioma nuevo es", "Había una vez, en un pequeño pueblo junto al mar,"],
    ),
    "it": (
        "Italian",
        ["Il modo migliore per imparare una nuova lingua è", "C'era una volta, in un piccolo villaggio sul mare,"],
    ),
    "pt": (
        "Portuguese",
        ["A melhor maneira de aprender uma nova língua é", "Era uma vez, numa pequena aldeia à beira-mar,"],
    ),
    "ru": ("Russian", ["Лучший способ выучить новый язык —", "Жила-была в маленькой деревне у моря"]),
    "zh": ("Chinese", ["学习一门新语言最好的方法是", "很久以前，在海边的一个小村庄里，"]),
    "ja": ("Japanese", ["新しい言語を学ぶ一番の方法は", "昔々、海辺の小さな村に"]),
    "ar": ("Arabic", ["أفضل طريقة لتعلم لغة جديدة هي", "كان يا ما كان، في قرية صغيرة على شاطئ البحر،"]),
    "hi": ("Hindi", ["नई भाषा सीखने का सबसे अच्छा तरीका है", "बहुत समय पहले, समुद्र के किनारे एक छोटे से गाँव में"]),
    "sw": (
        "Swahili",
        ["Njia bora ya kujifunza lugha mpya ni", "Hapo zamani za kale, katika kijiji kidogo kando ya bahari,"],
    ),
    "tr": ("Turkish", ["Yeni bir dil öğrenmenin en iyi yolu", "Bir zamanlar, deniz kenarındaki küçük bir köyde"]),
    "vi": (
        "Vietnamese",
        ["Cách tốt nhất để học một ngôn ngữ mới là", "Ngày xửa ngày xưa, ở một ngôi làng nhỏ bên bờ biển,"],
    ),
    "id": (
        "Indonesian",
        ["Cara terbaik untuk belajar bahasa baru adalah", "Pada suatu hari, di sebuah desa kecil di tepi laut,"],
    ),
    "th": ("Thai", ["วิธีที่ดีที่สุดในการเรียนภาษาใหม่คือ"]),
    "ta": ("Tamil", ["ஒரு புதிய மொழியைக் கற்றுக்கொள்ள சிறந்த வழி"]),
    "et": ("Estonian", ["Parim viis uut keelt õppida on", "Elas kord väikeses külas mere ääres"]),
    "ht": ("Haitian Creole", ["Pi bon fason pou aprann yon nouvo lang se"]),
    "qu": ("Quechua", ["Ñawpa pachapi, huk uchuy llaqtapi"]),
}

LANGUAGE_CHOICES = [(f"{name} ({code})", code) for code, (name, _) in EXAMPLES.items()]
SCORE_COLUMNS = ["position", "token", "dense_logprob", "pruned_logprob", "delta", "dense_top1", "pruned_top1"]


def build_app(
    dense: str | None = None,
    pruned: str | None = None,
    *,
    device: str | None = None,
    device_map: str | None = None,
    max_memory: str | None = None,
    offload_folder: str | None = None,
    pruned_runtime: str | None = None,
) -> gr.Blocks:
    """Load both models (once per process) and return the queued page comparing them.

    ``None`` reads ``DENSE_MODEL`` / ``PRUNED_MODEL`` from the environment; a missing dense model defaults to the
    base model recorded in the pruned model's ``hfprune.json``. ``device_map`` (or ``COMPARE_DEVICE_MAP``) with
    ``max_memory`` and ``offload_folder`` spreads each model over the GPUs, CPU and disk. ``pruned_runtime``
    (or ``PRUNED_RUNTIME``) ``openvino`` serves the pruned side from its OpenVINO export, on the CPU.

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
    runtime = pruned_runtime or os.environ.get("PRUNED_RUNTIME") or "pytorch"
    models = ModelPair(dense, pruned, where, placement, pruned_runtime=runtime)
    if not models.load():
        models.keep_trying()
    plot = model_file(pruned, PLOT_FILE)

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


def _ui_errors(fn_name: str, error: Exception) -> gr.Error:
    """Anything unexpected becomes a one-line message in the page; the traceback stays in the server log."""
    logger.exception("%s failed", fn_name)
    return gr.Error(
        f"{fn_name} failed ({type(error).__name__}). Try a shorter prompt or fewer tokens; "
        "if it keeps failing, the Space logs have the details."
    )


def _plot_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd  # a gradio dependency; only the plot needs it

    long = [
        {"position": r["position"], "logprob": r[f"{m}_logprob"], "model": m} for r in rows for m in ("dense", "pruned")
    ]
    return pd.DataFrame(long, columns=["position", "logprob", "model"])
