"""Task definitions: where each task's data lives (locally and on the Hub), how to prompt, what to report.

``splits`` lists the local splits in order of preference; the first is the one lm-evaluation-harness
scores. When a language only has a later one (XCOPA en, PAWS-X en/es/fr/ja in the shared bundle),
that split is used and recorded in the results, since its numbers are not from the harness's split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnknownTaskError
from . import prompts

#: ISO 639-1 -> FLORES-200 code, for Belebele's Hub configs.
FLORES_CODES = {
    "en": "eng_Latn",
    "de": "deu_Latn",
    "fr": "fra_Latn",
    "es": "spa_Latn",
    "zh": "zho_Hans",
    "ar": "arb_Arab",
    "hi": "hin_Deva",
    "ru": "rus_Cyrl",
    "sw": "swh_Latn",
    "ja": "jpn_Jpan",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "tr": "tur_Latn",
    "vi": "vie_Latn",
    "id": "ind_Latn",
    "th": "tha_Thai",
    "et": "est_Latn",
    "ht": "hat_Latn",
    "qu": "quy_Latn",
    "ta": "tam_Taml",
}

PPL = "ppl"


@dataclass(frozen=True)
class TaskSpec:
    """One zero-shot multiple-choice task."""

    name: str
    splits: tuple[str, ...]
    languages: tuple[str, ...]
    build: Callable[[dict, str], prompts.Prompt]
    metrics: tuple[str, ...] = ("acc",)
    hub_id: str = ""
    hub_split: str = "test"
    hub_config: Callable[[str], str] = staticmethod(lambda lang: lang)  # type: ignore[assignment]
    keep: Callable[[dict], bool] = staticmethod(lambda doc: True)  # type: ignore[assignment]

    def local_file(self, lang: str, split: str) -> str:
        """Path of a language's file relative to the data folder."""
        return f"{self.name}/{lang}.{split}.jsonl"


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="xcopa",
            splits=("test", "validation"),
            languages=tuple(prompts.XCOPA_CONNECTORS),
            build=prompts.xcopa_prompt,
            hub_id="cambridgeltl/xcopa",
        ),
        TaskSpec(
            name="xstorycloze",
            splits=("eval",),
            languages=("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"),
            build=prompts.xstorycloze_prompt,
            hub_id="juletxara/xstory_cloze",
            hub_split="eval",
        ),
        TaskSpec(
            name="xwinograd",
            splits=("test",),
            languages=("en", "fr", "ja", "pt", "ru", "zh"),
            build=prompts.xwinograd_prompt,
            hub_id="Muennighoff/xwinograd",
            hub_config=lambda lang: "jp" if lang == "ja" else lang,
        ),
        TaskSpec(
            name="pawsx",
            splits=("test", "validation"),
            languages=tuple(prompts.PAWSX_WORDS),
            build=prompts.pawsx_prompt,
            hub_id="google-research-datasets/paws-x",
            keep=prompts.pawsx_keep,
        ),
        TaskSpec(
            name="xnli",
            splits=("validation",),
            languages=tuple(prompts.XNLI_WORDS),
            build=prompts.xnli_prompt,
            hub_id="facebook/xnli",
            hub_split="validation",
        ),
        TaskSpec(
            name="belebele",
            splits=("test",),
            languages=tuple(FLORES_CODES),
            build=prompts.belebele_prompt,
            metrics=("acc", "acc_norm"),
            hub_id="facebook/belebele",
            hub_config=lambda lang: FLORES_CODES[lang],
        ),
    )
}

#: Every task name ``hfprune eval --tasks`` accepts, perplexity first.
TASK_NAMES: tuple[str, ...] = (PPL, *TASKS)
#: Metrics each task reports in tables, plots and cards (all metrics stay in the JSON).
HEADLINE_METRICS: dict[str, tuple[str, ...]] = {PPL: ("ppl", "bits_per_byte")} | {
    name: spec.metrics for name, spec in TASKS.items()
}


def get_task(name: str) -> TaskSpec:
    """The zero-shot task called ``name``; raise listing the known ones otherwise."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}")
    return TASKS[name]


def parse_tasks(spec: str | list[str]) -> list[str]:
    """Comma-separated task names (``all`` = every task), validated, in the order given."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["all"]:
        return list(TASK_NAMES)
    unknown = [n for n in names if n not in TASK_NAMES]
    if unknown or not names:
        raise UnknownTaskError(
            f"unknown task(s) {', '.join(map(repr, unknown)) or '(none given)'}; known tasks: {', '.join(TASK_NAMES)}"
        )
    return list(dict.fromkeys(names))
