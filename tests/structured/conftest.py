"""Random-init models of every architecture structured pruning supports (and variants whose attention has more
than one key/value group, so heads can go), and a small three-language calibration set."""

from __future__ import annotations

import pytest
import torch
import transformers as T
from transformers import AutoModelForCausalLM

from hfprune.calibration import CalibrationSet

from ..model_factory import VOCAB, make_model
from ..publish.conftest import write_hub  # noqa: F401 - a fixture: the Hub write emulator for the push test

#: the model_factory architectures structured pruning supports
SUPPORTED = ("llama", "qwen2", "mistral", "gemma3", "gpt2")
#: variants with 2 key/value groups of 2 query heads, so heads:2 removes one group
GQA_VARIANTS = {
    "mistral-gqa": lambda: T.MistralConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "gemma3-gqa": lambda: T.Gemma3TextConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    ),
}


def build(arch: str, seed: int = 0) -> torch.nn.Module:
    """A model_factory model, or one of the GQA variants."""
    if arch not in GQA_VARIANTS:
        return make_model(arch, seed)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(GQA_VARIANTS[arch]()).eval()


def calibration(samples_per_language: int = 4, seqlen: int = 24, seed: int = 0) -> CalibrationSet:
    """Random token ids tagged with three languages (plumbing, not quality)."""
    langs = [lang for lang in ("en", "sw", "de") for _ in range(samples_per_language)]
    ids = torch.randint(3, VOCAB, (len(langs), seqlen), generator=torch.Generator().manual_seed(seed))
    return CalibrationSet.from_tensors(ids, langs)


@pytest.fixture(scope="module")
def calib() -> CalibrationSet:
    return calibration()
