"""Prompt formats of lm-evaluation-harness's zero-shot multilingual tasks, one builder per task.

Each builder turns one data row into a :class:`Prompt`: the context(s), the continuations whose
log-likelihoods are compared, and the gold index. They follow the harness's task definitions
(``lm_eval/tasks/{xcopa,xstorycloze,xwinograd,paws-x,xnli,belebele}``): the same connector words,
target delimiters (" " by default, "" for PAWS-X) and choice order, so accuracies are comparable with
tables produced by the harness. ``choice_texts`` are the harness's ``doc_to_choice`` strings, whose
character lengths ``acc_norm`` divides by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """What to score for one item: ``contexts[i] + continuations[i]`` is choice ``i``."""

    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    choice_texts: tuple[str, ...]
    gold: int


def _shared_context(context: str, choices: list[str], gold: int, delimiter: str = " ") -> Prompt:
    """The common case: one context, each choice appended after the target delimiter."""
    return Prompt(
        contexts=tuple(context for _ in choices),
        continuations=tuple(delimiter + choice for choice in choices),
        choice_texts=tuple(choices),
        gold=gold,
    )


# --- XCOPA: "<premise without its final period> <because|therefore>" + " <choice, first letter lowered>"
XCOPA_CONNECTORS: dict[str, tuple[str, str]] = {  # lang: (cause, effect)
    "en": ("because", "therefore"),
    "et": ("sest", "seetõttu"),
    "ht": ("poukisa", "donk sa"),
    "it": ("perché", "quindi"),
    "id": ("karena", "maka"),
    "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"),
    "zh": ("因为", "所以"),
    "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"),
    "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"),
}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def xcopa_prompt(doc: dict, lang: str) -> Prompt:
    cause, effect = XCOPA_CONNECTORS[lang]
    connector = cause if doc["question"] == "cause" else effect
    context = doc["premise"].strip()[:-1] + f" {connector}"
    choices = [_lower_first(doc["choice1"]), _lower_first(doc["choice2"])]
    return _shared_context(context, choices, int(doc["label"]))


# --- XStoryCloze: the four story sentences joined by spaces, then " <ending>"
def xstorycloze_prompt(doc: dict, lang: str) -> Prompt:
    context = " ".join(doc[f"input_sentence_{i}"] for i in range(1, 5))
    choices = [doc["sentence_quiz1"], doc["sentence_quiz2"]]
    return _shared_context(context, choices, int(doc["answer_right_ending"]) - 1)


# --- XWinograd: "multiple input": the contexts differ (sentence up to "_" + option), the target is shared
def xwinograd_prompt(doc: dict, lang: str) -> Prompt:
    sentence = doc["sentence"]
    blank = sentence.index("_")
    contexts = tuple(sentence[:blank] + doc[option] for option in ("option1", "option2"))
    target = " " + sentence[blank + 1 :].strip()
    return Prompt(
        contexts=contexts,
        continuations=(target, target),
        choice_texts=contexts,
        gold={"1": 0, "2": 1}[str(doc["answer"])],
    )


# --- PAWS-X: empty context; "<s1 without final punctuation>, right? No|Yes, <s2 first letter lowered>"
PAWSX_WORDS: dict[str, tuple[str, str, str]] = {  # lang: (question word, yes, no)
    "de": ("richtig", "Ja", "Nein"),
    "en": ("right", "Yes", "No"),
    "es": ("verdad", "Sí", "No"),
    "fr": ("n'est-ce pas", "Oui", "No"),
    "ja": ("ですね", "はい", "いいえ"),
    "ko": ("맞죠", "예", "아니요"),
    "zh": ("对吧", "是", "不是"),
}


def _detokenize(text: str) -> str:
    """The harness's ``general_detokenize``: undo spaces the PAWS tokenization left around punctuation."""
    text = text.replace(" n't", "n't").replace(" )", ")").replace("( ", "(")
    text = text.replace('" ', '"').replace(' "', '"')
    return re.sub(r" (['.,])", r"\1", text)


def pawsx_prompt(doc: dict, lang: str) -> Prompt:
    question, yes, no = PAWSX_WORDS[lang]
    first = _detokenize(doc["sentence1"]).strip()
    if first.endswith((".", ",", ";")):
        first = first[:-1]
    second = _lower_first(_detokenize(doc["sentence2"]).strip())
    choices = [f"{first}, {question}? {no}, {second}", f"{first}, {question}? {yes}, {second}"]
    return _shared_context("", choices, int(doc["label"]), delimiter="")


def pawsx_keep(doc: dict) -> bool:
    """The harness drops PAWS-X rows with an empty sentence."""
    return bool(doc.get("sentence1")) and bool(doc.get("sentence2"))


# --- XNLI: "<premise>, right?" + " Yes|Also|No, <hypothesis>" (labels 0 entailment, 1 neutral, 2 contradiction)
XNLI_WORDS: dict[str, tuple[str, str, str, str]] = {  # lang: (question, entailment, neutral, contradiction)
    "ar": ("صحيح", "نعم", "لذا", "رقم"),
    "bg": ("правилно", "да", "така", "не"),
    "de": ("richtig", "Ja", "Auch", "Nein"),
    "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
    "en": ("right", "Yes", "Also", "No"),
    "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"),
    "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"),
    "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
    "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}


def xnli_prompt(doc: dict, lang: str) -> Prompt:
    question, entailment, neutral, contradiction = XNLI_WORDS[lang]
    hypothesis = doc["hypothesis"]
    choices = [f"{word}, {hypothesis}" for word in (entailment, neutral, contradiction)]
    return _shared_context(f"{doc['premise']}, {question}?", choices, int(doc["label"]))


# --- Belebele: passage, question and the four answers lettered, then " A|B|C|D".
# The harness's template ends in "Answer" + U+FF1A (a full-width colon), kept here as it is there.
BELEBELE_ANSWER_CUE = "Answer\uff1a"


def belebele_prompt(doc: dict, lang: str) -> Prompt:
    context = (
        f"P: {doc['flores_passage']}\nQ: {doc['question'].strip()}\n"
        f"A: {doc['mc_answer1']}\nB: {doc['mc_answer2']}\nC: {doc['mc_answer3']}\nD: {doc['mc_answer4']}\n"
        f"{BELEBELE_ANSWER_CUE}"
    )
    gold = ["1", "2", "3", "4"].index(str(doc["correct_answer_num"]))
    return _shared_context(context, ["A", "B", "C", "D"], gold)
