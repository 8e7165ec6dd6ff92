"""Fixtures for the evaluation tests: a tiny random Llama and small BPE tokenizers made offline."""

from __future__ import annotations

import os
import tempfile

# evaluate copies metric modules into $HF_HOME; keep that out of the user's cache (set before import).
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hfprune-test-hf-"))

import pytest  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from ..data_dirs import data_dir  # noqa: E402

LANGS = ("en", "de", "sw", "zh")


def _train_tokenizer(with_bos: bool) -> PreTrainedTokenizerFast:
    data = data_dir()
    lines = [
        line for lang in LANGS for line in (data / "calib" / "udhr" / f"{lang}.txt").read_text("utf-8").splitlines()
    ]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(lines, trainer)
    if with_bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="session")
def bos_tokenizer() -> PreTrainedTokenizerFast:
    """Adds BOS like Llama/Gemma; has no pad token."""
    return _train_tokenizer(with_bos=True)


@pytest.fixture(scope="session")
def plain_tokenizer() -> PreTrainedTokenizerFast:
    """Adds no BOS (GPT-2 style); has no pad token."""
    return _train_tokenizer(with_bos=False)


def make_model(vocab_size: int, seed: int = 0, max_positions: int = 256) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model(bos_tokenizer) -> LlamaForCausalLM:
    return make_model(len(bos_tokenizer))


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory, bos_tokenizer) -> dict[str, str]:
    """Two model folders (different seeds) loadable with AutoModelForCausalLM / AutoTokenizer."""
    folders = {}
    for name, seed in (("dense", 0), ("pruned", 1)):
        folder = tmp_path_factory.mktemp(name)
        make_model(len(bos_tokenizer), seed=seed).save_pretrained(folder)
        bos_tokenizer.save_pretrained(folder)
        folders[name] = str(folder)
    return folders
