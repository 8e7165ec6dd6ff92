"""hfprune's one speed meter (:mod:`hfprune.models.speed`): one prompt, several prompts, models in turns."""

from __future__ import annotations

import pytest
import torch

from hfprune.models import speed

from .model_factory import make_model, make_tokenizer


@pytest.fixture(scope="module")
def model_and_tokenizer():
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    return make_model("llama", seed=1).eval(), tokenizer


def test_one_prompt_times_prefill_decode_and_the_blocks_share(model_and_tokenizer):
    model, _ = model_and_tokenizer
    report = speed.measure_speed(model, torch.arange(3, 19)[None], new_tokens=6, repeats=2)
    assert report.prefill_tokens_per_s > 0 and report.decode_tokens_per_s > 0
    assert report.decode_ms_per_token == pytest.approx(1e3 / report.decode_tokens_per_s)
    assert 0 < report.blocks_decode_ms_per_token < report.decode_ms_per_token
    assert report.setup["prompt_tokens"] == 16 and report.setup["new_tokens"] == 6 and report.setup["machine"]


def test_several_prompts_sum_time_over_prompts(model_and_tokenizer, monkeypatch):
    model, tokenizer = model_and_tokenizer
    fixed = iter(
        [
            speed.SpeedReport(100.0, 10.0, 100.0, 50.0, 0.5, {"prompt_tokens": 10, "how": "h", "statistic": "s"}),
            speed.SpeedReport(50.0, 5.0, 200.0, 90.0, 0.45, {"prompt_tokens": 20, "how": "h", "statistic": "s"}),
        ]
    )
    setup = {"device": "cpu", "dtype": "float32", "threads": 1, "machine": "m"}

    def fake(model, prompt, **_):
        report = next(fixed)
        report.setup.update(setup)
        return report

    monkeypatch.setattr(speed, "measure_speed", fake)
    found = speed.measure_prompts(model, tokenizer, ["a b", "c d"], new_tokens=4, repeats=1)
    # prefill: 30 tokens over 0.1 s + 0.4 s; decode: 2 tokens (one per prompt) over 0.1 s + 0.2 s
    assert found["prefill_tokens_per_s"] == pytest.approx(30 / 0.5)
    assert found["decode_tokens_per_s"] == pytest.approx(2 / 0.3)
    assert found["prompt_tokens"] == 30 and found["prompts"] == 2


def test_models_timed_in_turns_keep_every_round_and_the_best(model_and_tokenizer):
    model, _ = model_and_tokenizer
    other = make_model("llama", seed=2).eval()
    prompt = torch.arange(3, 11)[None]
    found = speed.compare_speeds({"a": (model, prompt), "b": (other, prompt)}, rounds=3, new_tokens=4)
    for name in ("a", "b"):
        rounds = found[name]["rounds"]
        assert len(rounds) == 3
        assert found[name]["decode_tokens_per_s"] == max(r["decode_tokens_per_s"] for r in rounds)
        assert found[name]["decode_ms_per_token"] == min(r["decode_ms_per_token"] for r in rounds)
        assert found[name]["setup"]["rounds"] == 3
