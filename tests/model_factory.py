"""Random-init tiny models of every architecture the engine must handle, and a small real tokenizer.

Random weights are right for plumbing (shapes, sparsity, reload), never for quality claims.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as T
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, PreTrainedTokenizerFast

VOCAB = 320


def _configs() -> dict[str, T.PretrainedConfig]:
    common = dict(vocab_size=VOCAB, num_hidden_layers=2, num_attention_heads=4)
    return {
        "llama": T.LlamaConfig(hidden_size=64, intermediate_size=128, num_key_value_heads=2, **common),
        "qwen2": T.Qwen2Config(hidden_size=64, intermediate_size=128, num_key_value_heads=2, **common),
        "mistral": T.MistralConfig(hidden_size=64, intermediate_size=128, num_key_value_heads=1, **common),
        "gemma3": T.Gemma3TextConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        ),
        "bloom": T.BloomConfig(vocab_size=VOCAB, hidden_size=64, n_layer=2, n_head=4),
        "gpt2": T.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=2),
        "mt5": T.MT5Config(
            vocab_size=VOCAB,
            d_model=64,
            d_ff=128,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            d_kv=16,
            decoder_start_token_id=0,
        ),
    }


ARCHITECTURES = tuple(_configs())


def make_model(arch: str, seed: int = 0) -> torch.nn.Module:
    config = _configs()[arch]
    torch.manual_seed(seed)
    cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    return cls.from_config(config).eval()


def forward(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    extra = {"decoder_input_ids": ids} if model.config.is_encoder_decoder else {}
    return model(input_ids=ids, use_cache=False, **extra).logits


def make_tokenizer(texts: list[str], vocab_size: int = VOCAB) -> PreTrainedTokenizerFast:
    """A byte-level BPE that adds BOS, trained in well under a second on ``texts``."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def save_model_folder(model: torch.nn.Module, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def dense_statistics(model: torch.nn.Module, calib, batch_size: int = 2) -> dict:
    """Per-layer input statistics (sum of squares, per language) from plain forwards: the engine's reference."""
    from hfprune.models import all_prunable_layers
    from hfprune.pruning.stats import SQ_SUM, StatsCollector

    reference = StatsCollector(all_prunable_layers(model), frozenset({SQ_SUM}))
    with torch.no_grad(), reference.attached():
        for lang, ids in calib.batches(batch_size):
            reference.language = lang
            forward(model, ids)
            reference.end_batch()
    return reference.stats


def calibration_excerpt(folder: Path, langs: tuple[str, ...] = ("en", "sw", "de"), lines: int = 150) -> Path:
    """The first ``lines`` of the shared NTREX calibration text per language: enough for a few short samples, and
    tokenised in milliseconds (the whole files cost each pruning run about a second)."""
    from .data_dirs import data_dir

    shared = data_dir()
    assert shared is not None, "the shared data folder (../shared/data or HFPRUNE_DATA_DIR) is needed"
    folder.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        text = (shared / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:lines]
        (folder / f"{lang}.txt").write_text("\n".join(text), encoding="utf-8")
    return folder
