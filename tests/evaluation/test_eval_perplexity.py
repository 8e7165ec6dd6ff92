import math

import pytest
import torch

from hfprune.errors import ContextLengthError, DataFileMissingError, EmptyTextError
from hfprune.evaluation import load_flores, perplexity
from hfprune.evaluation.windows import plan_windows


def _by_hand(model, tokenizer, text, context_length, stride, bos):
    """Per window, one unpadded forward; NLL of the scored tokens from log_softmax."""
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = [tokenizer.bos_token_id] if bos else []
    nll, count = 0.0, 0
    for window in plan_windows(len(tokens), context_length, stride, has_bos=bos):
        ids = prefix + tokens[window.start : window.end]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
        for position in range(len(prefix) + window.score_from - window.start, len(ids)):
            nll -= float(logprobs[position - 1, ids[position]])
            count += 1
    return nll, count, len(tokens)


@pytest.mark.parametrize("bos", [True, False])
@pytest.mark.parametrize("stride", [None, 20])
def test_perplexity_is_exp_mean_nll_over_the_same_windows(tiny_model, bos_tokenizer, plain_tokenizer, bos, stride):
    tokenizer = bos_tokenizer if bos else plain_tokenizer
    text = load_flores("de")[:900]
    result = perplexity(tiny_model, tokenizer, text, context_length=48, stride=stride, batch_size=3)
    nll, count, n_tokens = _by_hand(tiny_model, tokenizer, text, 48, stride, bos)
    assert result.n_tokens == count == (n_tokens if bos else n_tokens - 1)  # every scorable token once
    assert result.nll_sum == pytest.approx(nll, rel=1e-4)
    assert result.ppl == pytest.approx(math.exp(nll / count), rel=1e-4)
    assert result.n_bytes == len(text.encode("utf-8"))
    assert result.bits_per_byte == pytest.approx(nll / math.log(2) / result.n_bytes, rel=1e-4)
    assert result.n_windows > 1 and result.ppl_stderr > 0


def test_windows_score_each_token_once_within_the_context():
    for bos in (True, False):
        windows = plan_windows(100, context_length=16, stride=5, has_bos=bos)
        scored = [t for w in windows for t in range(w.score_from, w.end)]
        assert scored == list(range(0 if bos else 1, 100))
        assert all(w.end - w.start + int(bos) <= 16 for w in windows)
        assert all(w.score_from > w.start or bos for w in windows)  # something to condition on


def test_every_window_starts_with_bos(tiny_model, bos_tokenizer):
    seen = []
    embeddings = tiny_model.get_input_embeddings()
    handle = embeddings.register_forward_pre_hook(lambda module, args: seen.append(args[0]))  # ids of every pass
    try:
        perplexity(tiny_model, bos_tokenizer, load_flores("en")[:800], context_length=32, batch_size=2)
    finally:
        handle.remove()
    rows = torch.cat([ids[:, :1] for ids in seen])
    assert len(rows) > 2 and bool((rows[:, 0] == bos_tokenizer.bos_token_id).all())


def test_tokenizer_without_pad_token_works_batched(tiny_model, bos_tokenizer):
    assert bos_tokenizer.pad_token is None
    text = load_flores("sw")[:700]
    one = perplexity(tiny_model, bos_tokenizer, text, context_length=40, batch_size=1)
    many = perplexity(tiny_model, bos_tokenizer, text, context_length=40, batch_size=8)
    assert many.ppl == pytest.approx(one.ppl, rel=1e-5)
    assert bos_tokenizer.pad_token is None  # not mutated


def test_context_length_above_model_maximum(tiny_model, bos_tokenizer):
    with pytest.raises(ContextLengthError, match="maximum of 256"):
        perplexity(tiny_model, bos_tokenizer, "some text here", context_length=257)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(tiny_model, bos_tokenizer, text):
    with pytest.raises(EmptyTextError, match="empty"):
        perplexity(tiny_model, bos_tokenizer, text, context_length=32)


def test_load_flores_names_a_missing_file(tmp_path):
    (tmp_path / "flores").mkdir()
    (tmp_path / "flores" / "en.devtest.txt").write_text("Hello.\n", encoding="utf-8")
    assert load_flores("en", tmp_path) == "Hello."
    with pytest.raises(DataFileMissingError, match=r"flores/xx\.devtest\.txt.*languages there: en"):
        load_flores("xx", tmp_path)


def test_flores_document_is_all_devtest_sentences():
    assert len(load_flores("zh").splitlines()) == 1012
