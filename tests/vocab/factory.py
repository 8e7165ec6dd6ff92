"""Tokenizers of every family vocabulary trimming handles, trained with ``tokenizers`` on the shared calibration
text in about a second each, and random-init models sized to them.

Random weights are right for the surgery (ids, rows, configs, reloading, logits equality), never for quality.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import transformers as T
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, GemmaTokenizer, PreTrainedTokenizerFast

from ..data_dirs import data_dir

#: Languages of the training text: three scripts, so trimming to some of them drops a lot.
LANGS = ("en", "de", "sw", "ru", "zh")
FAMILIES = ("byte_level", "byte_level_ignore_merges", "gemma", "unigram", "unigram_byte_fallback")
#: A chat template of our own (Gemma-style turn markers), to check that trimming keeps chat formatting working.
CHAT_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def training_lines(langs: tuple[str, ...] = LANGS) -> list[str]:
    data = data_dir()
    lines: list[str] = []
    for lang in langs:
        for corpus in ("udhr", "ntrex"):
            path = data / "calib" / corpus / f"{lang}.txt"
            if path.is_file():
                lines += [line for line in path.read_text("utf-8").splitlines() if line.strip()][:300]
    return lines


@cache
def make_tokenizer(family: str, vocab_size: int = 3000) -> PreTrainedTokenizerFast:
    """A fast tokenizer of ``family`` (see :data:`FAMILIES`), with a chat template. Character-based families
    need a vocabulary above the training text's ~1,500 distinct characters (Chinese among them)."""
    tokenizer = {
        "byte_level": lambda: _byte_level(vocab_size, ignore_merges=False),
        "byte_level_ignore_merges": lambda: _byte_level(vocab_size, ignore_merges=True),
        "gemma": lambda: _gemma(vocab_size),
        "unigram": lambda: _unigram(vocab_size, byte_fallback=False),
        "unigram_byte_fallback": lambda: _unigram(vocab_size, byte_fallback=True),
    }[family]()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _byte_level(vocab_size: int, *, ignore_merges: bool) -> PreTrainedTokenizerFast:
    """GPT-2 / Llama 3 style: byte-level alphabet, BOS added by a template; Llama 3 also ignores merges for
    words already in the vocabulary."""
    specials = ["<s>", "</s>", "<pad>", "<start_of_turn>", "<end_of_turn>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(training_lines(), trainer)
    if ignore_merges:
        import json

        vocab, merges = json.loads(tok.to_str())["model"]["vocab"], _merges(tok)
        tok.model = models.BPE(vocab, merges, ignore_merges=True)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def _merges(tok: Tokenizer) -> list[tuple[str, str]]:
    import json

    return [
        tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in json.loads(tok.to_str())["model"]["merges"]
    ]


def _gemma(vocab_size: int) -> GemmaTokenizer:
    """Gemma / Llama 2 style: SentencePiece BPE with byte fallback (``<0xNN>`` pieces, ``▁`` for spaces), built by
    transformers' own GemmaTokenizer class from a vocabulary and merges trained here."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Replace(" ", "▁")
    trainer_tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer_tok.train_from_iterator(training_lines(), trainers.BpeTrainer(vocab_size=vocab_size))
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)]
    learned = sorted(trainer_tok.get_vocab().items(), key=lambda item: item[1])
    vocab = {piece: i for i, piece in enumerate(pieces)}
    for piece, _ in learned:
        vocab.setdefault(piece, len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=_merges(trainer_tok), add_bos_token=True)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    return tokenizer


def _unigram(vocab_size: int, *, byte_fallback: bool) -> PreTrainedTokenizerFast:
    """mT5 / XLM-R style: a SentencePiece Unigram with Metaspace (and, optionally, byte fallback pieces)."""
    specials = ["<pad>", "</s>", "<unk>", "<s>", "<start_of_turn>", "<end_of_turn>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(training_lines(), trainer)
    if byte_fallback:
        import json

        data = json.loads(tok.to_str())
        present = {piece for piece, _ in data["model"]["vocab"]}
        data["model"]["vocab"] += [[f"<0x{b:02X}>", 0.0] for b in range(256) if f"<0x{b:02X}>" not in present]
        data["model"]["byte_fallback"] = True
        tok = Tokenizer.from_str(json.dumps(data))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", bos_token="<s>"
    )


def make_model(tokenizer, *, arch: str = "llama", tied: bool = True, seed: int = 0) -> torch.nn.Module:
    """A random-init causal LM whose vocabulary is ``tokenizer``'s, with its special ids in the configs."""
    rows = len(tokenizer)
    ids = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tied,
    )
    if arch == "gemma3":
        config = T.Gemma3TextConfig(
            vocab_size=rows,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"],
            **ids,
        )
    else:
        config = T.LlamaConfig(
            vocab_size=rows,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **ids,
        )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    eos_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, eos_turn]
    return model


def save_folder(model, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
