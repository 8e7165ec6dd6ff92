import math

import pytest
import torch

from hfprune.evaluation.data import read_jsonl
from hfprune.evaluation.scoring import loglikelihoods
from hfprune.evaluation.task_data import load_task_data
from hfprune.evaluation.tasks import TASKS, get_task
from hfprune.evaluation.zeroshot import build_prompts, evaluate_task

from ..data_dirs import data_dir, needs_full_data

CASES = [
    ("xcopa", "sw"),
    pytest.param("xstorycloze", "en", marks=needs_full_data),  # not shipped: its licence does not allow it
    pytest.param("xwinograd", "en", marks=needs_full_data),  # not shipped: mixed licences
    ("pawsx", "de"),
    pytest.param("xnli", "zh", marks=needs_full_data),  # not shipped: CC BY-NC
    ("belebele", "de"),
]


def _prefers(choice: int):
    """A scorer for a model that always prefers ``choice``: it knows each request's choice index by position."""

    def make(prompts):
        flat = [i for p in prompts for i in range(len(p.continuations))]
        return lambda requests: [1.0 if flat[k] == choice else 0.0 for k in range(len(requests))]

    return make


@pytest.mark.parametrize("task,lang", CASES)
def test_accuracy_of_always_choice_one_is_share_of_label_one(task, lang):
    spec = get_task(task)
    docs = load_task_data(spec, lang, data_dir(), limit=200).docs
    prompts = build_prompts(spec, docs, lang)
    for choice in (0, 1):
        score = evaluate_task(spec, docs, lang, _prefers(choice)(prompts))
        share = sum(p.gold == choice for p in prompts) / len(prompts)
        assert score.metrics["acc"] == pytest.approx(share)
        assert score.metrics["acc_stderr"] == pytest.approx(math.sqrt(share * (1 - share) / (len(prompts) - 1)))
        assert score.n == len(prompts)


def test_acc_norm_divides_by_choice_length():
    spec = TASKS["xstorycloze"]
    doc = {f"input_sentence_{i}": "x." for i in range(1, 5)} | {
        "sentence_quiz1": "short",
        "sentence_quiz2": "much much longer",
        "answer_right_ending": 2,
    }
    spec_norm = type(spec)(**{**spec.__dict__, "metrics": ("acc", "acc_norm")})
    score = evaluate_task(spec_norm, [doc], "en", lambda requests: [-5.0, -8.0])  # total favours 1, per char 2
    assert score.predictions == {"acc": [0], "acc_norm": [1]}


def _manual_logprob(model, tokenizer, context, continuation):
    bos = [tokenizer.bos_token_id]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ids = bos + whole
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return sum(float(logprobs[p - 1, ids[p]]) for p in range(len(bos) + len(ctx), len(ids)))


def test_batched_padded_scores_equal_one_by_one(tiny_model, bos_tokenizer):
    path = data_dir() / "xcopa" / "sw.test.jsonl"
    prompts = build_prompts(TASKS["xcopa"], read_jsonl(path)[:6], "sw")
    requests = [(c, x) for p in prompts for c, x in zip(p.contexts, p.continuations)]
    batched = loglikelihoods(tiny_model, bos_tokenizer, requests, batch_size=5)
    manual = [_manual_logprob(tiny_model, bos_tokenizer, c, x) for c, x in requests]
    assert batched == pytest.approx(manual, rel=1e-4)


def test_trailing_space_moves_to_the_continuation_and_empty_context_gets_bos(tiny_model, bos_tokenizer):
    moved, plain = loglikelihoods(tiny_model, bos_tokenizer, [("Hello ", "world"), ("Hello", " world")])
    assert moved == pytest.approx(plain)
    (empty,) = loglikelihoods(tiny_model, bos_tokenizer, [("", "Hello world")])
    assert empty == pytest.approx(_manual_logprob(tiny_model, bos_tokenizer, "", "Hello world"), rel=1e-4)
