"""Chunked next-token log-probabilities equal the log-softmax of the model's own logits, on every architecture."""

from __future__ import annotations

import pytest
import torch

from hfprune.evaluation import next_token
from hfprune.evaluation.next_token import next_token_logprobs, span_logprob_sums

from ..model_factory import ARCHITECTURES, VOCAB, make_model

CAUSAL = [arch for arch in ARCHITECTURES if arch != "mt5"]


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, 20), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0  # a right-padded row
    return ids, mask


def _reference(model, ids, mask, rows, positions, targets) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
    return torch.log_softmax(logits, -1)[rows, positions, targets]


def _ours_and_reference(model, seed: int, rows: list[int], positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Our log-probabilities of the true next tokens at (rows, positions), and the model's log-softmax of them."""
    ids, mask = _batch(seed)
    rows_t, positions_t = torch.tensor(rows), torch.tensor(positions)
    targets = ids[rows_t, positions_t + 1]
    with torch.inference_mode():
        ours = next_token_logprobs(model, ids, mask, rows_t, positions_t, targets)
        return ours, _reference(model, ids, mask, rows_t, positions_t, targets)


@pytest.mark.parametrize("arch", CAUSAL)
def test_chunked_logprobs_equal_the_models_log_softmax(arch, monkeypatch):
    monkeypatch.setattr(next_token, "MIN_CHUNK", 4)
    monkeypatch.setattr(next_token, "CHUNK_ELEMENTS", 4 * VOCAB)  # several chunks per batch
    model = make_model(arch)
    rows = [0] * 19 + [1] * 13 + [2] * 5
    positions = list(range(19)) + list(range(13)) + list(range(10, 15))
    ours, expected = _ours_and_reference(model, 0, rows, positions)
    assert next_token._SPLITS[model] is not None  # the chunked path ran, not the fallback
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_gemma_final_soft_capping_is_applied():
    model = make_model("gemma3")
    model.config.final_logit_softcapping = 2.0  # small, so capping changes every logit
    ours, expected = _ours_and_reference(model, 1, [0, 0, 2], [3, 7, 11])
    assert next_token._SPLITS[model] is not None
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


class _ScaledLlama(torch.nn.Module):
    """A model whose forward scales the logits after its output layer (as some architectures do)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = make_model("llama")
        self.base_model_prefix = "model"
        self.model = self.inner.model
        self.config = self.inner.config

    def get_output_embeddings(self):
        return self.inner.lm_head

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits = out.logits * 3.0
        return out


def test_a_head_the_split_cannot_reproduce_falls_back_to_the_plain_forward():
    model = _ScaledLlama().eval()
    ours, expected = _ours_and_reference(model, 2, [0, 1, 2], [5, 6, 7])
    assert next_token._SPLITS[model] is None
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_span_sums_add_the_tokens_of_each_span():
    model = make_model("qwen2")
    ids, mask = _batch(3)
    spans = [(1, 20), (5, 14), (19, 20)]
    with torch.inference_mode():
        sums = span_logprob_sums(model, ids, mask, spans)
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.double(), -1)
    for row, (first, end) in enumerate(spans):
        expected = sum(float(logprobs[row, p - 1, ids[row, p]]) for p in range(first, end))
        assert sums[row] == pytest.approx(expected, abs=1e-4)
