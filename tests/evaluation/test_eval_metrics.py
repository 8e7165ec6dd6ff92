import math

import pytest

from hfprune.evaluation.metrics import ChoiceAccuracy, WindowedPerplexity


def test_accuracy_follows_evaluate_convention_with_stderr():
    values = ChoiceAccuracy().compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 0])
    assert values["accuracy"] == 0.5
    assert values["accuracy_stderr"] == pytest.approx(math.sqrt(0.25 / 3))


def test_windowed_perplexity_against_hand_computation():
    nll, tokens = [30.0, 20.0, 25.0], [10, 8, 9]
    values = WindowedPerplexity().compute(nll_sums=nll, n_tokens=tokens, n_bytes=100)
    mean = 75.0 / 27
    assert values["perplexity"] == pytest.approx(math.exp(mean))
    assert values["bits_per_byte"] == pytest.approx(75.0 / math.log(2) / 100)
    residual = sum((a - mean * b) ** 2 for a, b in zip(nll, tokens))
    se = math.sqrt(residual / 6) / 9
    assert values["perplexity_stderr"] == pytest.approx(math.exp(mean) * se)
