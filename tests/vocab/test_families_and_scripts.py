"""Which tokenizers can be trimmed, which of their tokens spell bytes, and which scripts a language is written in."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import ByT5Tokenizer, PreTrainedTokenizerFast

from hfprune.errors import UnknownLanguageError, UnknownScriptError, UnsupportedTokenizerError
from hfprune.vocab.closure import MergeTable
from hfprune.vocab.families import (
    BYTE_FALLBACK_BPE,
    BYTE_LEVEL_BPE,
    UNIGRAM,
    byte_level_alphabet,
    parse_definition,
    read_definition,
)
from hfprune.vocab.unicode_scripts import ScriptFilter, language_scripts

from .factory import make_tokenizer, training_lines


@pytest.mark.parametrize(
    ("family", "expected", "byte_tokens"),
    [
        ("byte_level", BYTE_LEVEL_BPE, 256),
        ("byte_level_ignore_merges", BYTE_LEVEL_BPE, 256),
        ("gemma", BYTE_FALLBACK_BPE, 256),
        ("unigram", UNIGRAM, 0),
        ("unigram_byte_fallback", UNIGRAM, 256),
    ],
)
def test_each_family_is_recognised_with_its_byte_tokens(family, expected, byte_tokens):
    definition = read_definition(make_tokenizer(family))

    assert definition.family == expected
    assert len(definition.byte_ids) == byte_tokens
    assert {definition.tokens[i] for i in definition.added} >= {"<start_of_turn>", "<end_of_turn>"}


def test_our_byte_level_table_is_the_one_tokenizers_uses():
    assert set(byte_level_alphabet().values()) == set(pre_tokenizers.ByteLevel.alphabet())
    definition = read_definition(make_tokenizer("byte_level"))
    by_text = {text: i for i, text in definition.tokens.items()}
    assert definition.token_bytes(by_text["Ġthe"]) == b" the"


def test_wordpiece_and_tokenizers_without_tokenizer_json_are_refused():
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    wordpiece.train_from_iterator(training_lines(("en",)), trainers.WordPieceTrainer(vocab_size=300))
    with pytest.raises(UnsupportedTokenizerError, match="WordPiece model"):
        read_definition(PreTrainedTokenizerFast(tokenizer_object=wordpiece))
    with pytest.raises(UnsupportedTokenizerError, match="no tokenizer.json"):
        read_definition(ByT5Tokenizer())


def test_a_bpe_without_any_byte_alphabet_is_refused():
    data = json.loads(make_tokenizer("gemma").backend_tokenizer.to_str())
    data["model"]["byte_fallback"] = False
    with pytest.raises(UnsupportedTokenizerError, match="neither byte fallback nor a byte-level alphabet"):
        parse_definition(data)


@pytest.mark.parametrize("family", ["byte_level", "gemma"])
def test_replaying_the_merges_builds_exactly_the_tokens_bpe_builds(family):
    """The closure rests on this: BPE on a token's own text reaches the token iff the replay says so."""
    tokenizer = make_tokenizer(family)
    definition = read_definition(tokenizer)
    table = MergeTable(definition.merges)
    model = tokenizer.backend_tokenizer.model
    checked = reachable = 0
    for token_id in sorted(definition.model_ids - definition.added - definition.byte_ids):
        text = definition.tokens[token_id]
        path = table.path(list(text), text)
        assert path.reachable == ([t.value for t in model.tokenize(text)] == [text]), text
        checked += 1
        reachable += path.reachable
    assert checked > 2000 and reachable > 0.9 * checked


@pytest.mark.parametrize(
    ("lang", "scripts"),
    [
        ("en", ("Latn",)),
        ("sw", ("Latn",)),
        ("ru", ("Cyrl",)),
        ("hi", ("Deva",)),
        ("zh", ("Hani",)),
        ("zh-Hant", ("Hani",)),
        ("ja", ("Hani", "Hira", "Kana")),
        ("ko", ("Hang", "Hani")),
        ("sr-Latn", ("Latn",)),
    ],
)
def test_languages_map_to_their_unicode_scripts(lang, scripts):
    assert language_scripts(lang) == scripts


def test_a_language_without_a_known_script_and_a_non_language_are_errors():
    with pytest.raises(UnknownScriptError, match="script of 'tlh' is not known"):
        language_scripts("tlh")
    with pytest.raises(UnknownLanguageError):
        language_scripts("xx-notalanguage")


def test_script_filter_judges_whole_characters_and_fragments_of_them():
    latin = ScriptFilter(language_scripts("en"))
    han = ScriptFilter(language_scripts("zh"))
    zhong = "中".encode()

    assert latin.allows_bytes("café, 12½!".encode())  # Latin with Common characters
    assert not latin.allows_bytes("дом".encode())
    assert latin.allows_bytes("é".encode()[:1])  # the first byte of a Latin character
    assert not latin.allows_bytes(zhong[:2])  # two bytes that only start CJK characters
    assert han.allows_bytes(zhong[:2]) and han.allows_bytes(zhong[1:]) and han.allows_bytes("中文。".encode())
    assert not han.allows_bytes(b"abc")
    assert latin.allows_text("\u200bzero\u200dwidth")  # Inherited joiners belong to every script
