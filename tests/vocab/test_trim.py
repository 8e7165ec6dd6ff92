"""Trimming in memory, family by family: the tokenizer, the rows, the configs, and the built-in verification."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import hfprune
from hfprune.calibration import open_source
from hfprune.errors import NonStandardEmbeddingsError, VocabSizeError, VocabSourceError, VocabVerificationError
from hfprune.vocab import trim as trim_module
from hfprune.vocab.families import read_definition

from .factory import FAMILIES, make_model, make_tokenizer, save_folder

#: Cheap settings: 200 held-out sentences per language, two sentences' logits, no timing.
FAST = dict(verify_sentences=200, logit_sentences=2, measure_speed=False, list_words=3000)


@functools.cache
def trimmed(family: str, langs: str = "en,de", *, arch: str = "llama", tied: bool = True, **settings):
    """(original tokenizer, an untouched copy of the model, the trimmed model, the result), made once per
    argument set: tests only read them."""
    tokenizer = make_tokenizer(family)
    model = make_model(tokenizer, arch=arch, tied=tied)
    original = make_model(tokenizer, arch=arch, tied=tied)
    result = hfprune.trim_vocab(model, tokenizer, langs=langs, **{**FAST, **settings})
    return tokenizer, original, model, result


def same_split(before, after, mapping, text) -> bool:
    return [mapping.get(i, -1) for i in before(text)["input_ids"]] == after(text)["input_ids"]


@pytest.mark.parametrize("family", FAMILIES)
def test_trimmed_model_gives_the_original_logits_on_the_kept_tokens(family):
    tokenizer, original, model, result = trimmed(family)
    record = result.record
    keep = torch.tensor(result.keep)

    assert record["verification"]["logits"]["passed"] and record["verification"]["logits"]["max_abs_difference"] <= 1e-5
    assert record["verification"]["logits"]["sentences"] >= 1
    assert record["rows_after"] == len(result.keep) == len(result.tokenizer) < record["rows_before"]
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size == len(result.keep)
    text = "The committee met on Monday. Die Kommission tagte am Montag."
    old_ids = tokenizer(text, return_tensors="pt").input_ids
    new_ids = result.tokenizer(text, return_tensors="pt").input_ids
    assert torch.equal(new_ids, torch.tensor([[result.mapping[i] for i in old_ids[0].tolist()]]))
    with torch.no_grad():
        expected = original(old_ids).logits[..., keep]
        assert torch.allclose(model(new_ids).logits, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_vocabulary_text_itself_tokenizes_exactly_as_before(family):
    tokenizer, _, _, result = trimmed(family, langs="en,sw")
    source = open_source(None)
    lines = [line for lang in ("en", "sw") for line in source.documents(lang, 0)][::7]

    assert all(same_split(tokenizer, result.tokenizer, result.mapping, line) for line in lines)
    assert result.record["selection"]["by_reason"]["corpus"] > 0


@pytest.mark.parametrize("family", ["byte_level", "gemma", "unigram"])
def test_keeping_scripts_leaves_text_in_those_scripts_unchanged(family):
    _, _, _, result = trimmed(family, "en,de", scripts=True, other_langs="ru,zh")
    kept = result.record["verification"]["kept"]

    assert result.record["scripts"] == {"en": ["Latn"], "de": ["Latn"]}
    assert all(row["identical_share"] == 1.0 for row in kept.values()), kept
    assert result.record["selection"]["by_reason"]["scripts"] > 0
    # Russian and Chinese were not kept: their text tokenizes differently now, and the record says how.
    not_kept = result.record["verification"]["not_kept"]
    assert set(not_kept) == {"ru", "zh"} and all(row["identical_share"] < 0.5 for row in not_kept.values())
    if family == "unigram":  # no byte fallback: characters no kept piece covers become <unk>
        assert all(row["unknown_after"] > row["unknown_before"] for row in not_kept.values())
    else:
        assert all(row["tokens_change"] > 0 for row in not_kept.values())


@pytest.mark.parametrize("family", ["byte_level", "gemma", "unigram", "unigram_byte_fallback"])
def test_any_text_still_encodes_and_decodes(family):
    _, _, _, result = trimmed(family, "en")
    text = "Привет, 世界! naïve"
    ids = result.tokenizer(text, add_special_tokens=False)["input_ids"]

    assert max(ids) < len(result.keep)
    if family != "unigram":  # without byte fallback, characters no piece covers become <unk>, as before trimming
        assert result.tokenizer.decode(ids).strip() == text
    else:
        assert result.record["verification"]["not_kept"]  # and the record counts the <unk> they became


def test_configs_and_generation_config_are_remapped_and_gemma_stays_tied():
    tokenizer, _, model, result = trimmed("gemma", arch="gemma3")
    mapping, eos_turn = result.mapping, tokenizer.convert_tokens_to_ids("<end_of_turn>")

    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.config.eos_token_id == mapping[tokenizer.eos_token_id] == result.tokenizer.eos_token_id
    assert model.config.bos_token_id == result.tokenizer.bos_token_id
    assert model.config.pad_token_id == result.tokenizer.pad_token_id
    assert model.generation_config.eos_token_id == [mapping[tokenizer.eos_token_id], mapping[eos_turn]]
    assert result.tokenizer.convert_ids_to_tokens(model.generation_config.eos_token_id[1]) == "<end_of_turn>"


def test_an_untied_head_is_gathered_too():
    _, original, model, result = trimmed("byte_level", tied=False)
    keep = torch.tensor(result.keep)

    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert torch.equal(model.get_output_embeddings().weight, original.get_output_embeddings().weight[keep])
    assert torch.equal(model.get_input_embeddings().weight, original.get_input_embeddings().weight[keep])


@pytest.mark.parametrize("family", ["byte_level", "gemma", "unigram"])
def test_the_chat_template_renders_the_same_text_and_tokens(family):
    tokenizer, _, _, result = trimmed(family)
    messages = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Guten Tag"}]
    before = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    after = result.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    assert before == after
    assert same_split(tokenizer, result.tokenizer, result.mapping, before)
    check = result.record["verification"]["chat_template"]
    assert check == {"present": True, "same_text": True, "same_ids": True, "same_ids_with_messages": True}


def test_the_chat_templates_own_text_stays_even_when_the_vocabulary_text_never_uses_it(tmp_path):
    (tmp_path / "en.txt").write_text("Hello hello hello. The cat sat.\n", encoding="utf-8")
    tokenizer = make_tokenizer("gemma")
    skeleton = tokenizer.apply_chat_template(
        [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
        tokenize=False,
        add_generation_prompt=True,
    )

    result = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", source=str(tmp_path), **FAST)

    assert result.record["selection"]["by_reason"]["template"] > 0
    assert result.record["verification"]["chat_template"]["same_ids"]
    assert same_split(tokenizer, result.tokenizer, result.mapping, skeleton)


def test_saved_output_reloads_with_plain_transformers_and_trims_again(tmp_path):
    tokenizer, original, model, result = trimmed("gemma", "en,de,sw", arch="gemma3")
    folder = save_folder(model, result.tokenizer, tmp_path / "once")
    reloaded, retok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    text = "Habari ya asubuhi, guten Morgen"
    with torch.no_grad():
        expected = original(tokenizer(text, return_tensors="pt").input_ids).logits[..., torch.tensor(result.keep)]
        assert torch.allclose(reloaded(retok(text, return_tensors="pt").input_ids).logits, expected, atol=1e-5)

    again = hfprune.trim_vocab(reloaded, retok, langs="en", **FAST)  # trimming a trimmed model

    assert again.record["rows_before"] == len(result.keep) > again.record["rows_after"]
    assert again.record["verification"]["logits"]["passed"]
    assert read_definition(again.tokenizer).family == read_definition(tokenizer).family


def test_size_cap_is_filled_by_frequency_and_cannot_go_below_what_must_stay():
    tokenizer = make_tokenizer("byte_level")
    full = trimmed("byte_level")[3].record["selection"]
    capped = trimmed("byte_level", size=600)[3]
    frequent = trimmed("byte_level", min_count=50)[3].record["selection"]

    assert len(capped.keep) <= 600 < full["kept_tokens"]
    assert capped.record["selection"]["left_out_by_size_cap"] > 0
    assert frequent["corpus_tokens_at_min_count"] < full["corpus_tokens_at_min_count"]
    assert frequent["kept_tokens"] < full["kept_tokens"]
    with pytest.raises(
        VocabSizeError, match=r"--vocab-size 100 is below the 2\d\d tokens .*bytes 256, chat template \d"
    ):
        hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", size=100, **FAST)


def test_a_language_without_vocabulary_text_is_an_error(tmp_path):
    (tmp_path / "en.txt").write_text("Just a little English text.\n", encoding="utf-8")
    tokenizer = make_tokenizer("byte_level")
    with pytest.raises(VocabSourceError, match="no text for 'sw'"):
        hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en,sw", source=str(tmp_path), **FAST)


def test_other_vocabulary_sized_weights_are_refused():
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = make_tokenizer("byte_level")
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
    )
    model = BartForConditionalGeneration(config)
    with pytest.raises(NonStandardEmbeddingsError, match="final_logits_bias"):
        hfprune.trim_vocab(model, tokenizer, langs="en", **FAST)


def test_a_surgery_that_scrambles_rows_is_caught_and_raises(monkeypatch):
    """Fault injection (a deliberately broken stand-in for the row gather): the built-in logits check must fail."""
    real = trim_module.gather_rows
    monkeypatch.setattr(trim_module, "gather_rows", lambda model, keep: real(model, [*keep[1:], keep[0]]))
    tokenizer = make_tokenizer("byte_level")
    with pytest.raises(VocabVerificationError, match="logits differ"):
        hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", **FAST)


def test_the_record_and_the_map_say_why_every_token_stayed():
    _, _, _, result = trimmed("gemma", "en", scripts=False)
    id_map = result.id_map()
    record = json.loads(json.dumps(result.record))  # JSON-ready

    assert len(id_map["old_ids"]) == len(id_map["reasons"]) == len(result.keep)
    assert set(id_map["reasons"]) <= set(id_map["reason_codes"])
    assert sum(record["selection"]["by_reason"].values()) == len(result.keep)
    assert record["corpus"]["languages"]["en"]["distinct_tokens"] > 100
    assert record["family"] == "BPE with byte fallback" and record["tokenizer_class"] == "GemmaTokenizer"


def test_a_datasets_source_is_streamed_only_as_far_as_the_character_budget(tmp_path, monkeypatch):
    from hfprune.calibration import DatasetSource

    from .factory import training_lines

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "corpus"
    (repo / "data").mkdir(parents=True)
    lines = training_lines(("en",))
    (repo / "data" / "en.jsonl").write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n    path: data/en.jsonl\n---\n"
    )
    source = DatasetSource(str(repo), langs=["en"])
    tokenizer = make_tokenizer("byte_level")

    result = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", source=source, chars=3000, **FAST)

    corpus = result.record["corpus"]
    assert corpus["source"]["kind"] == "datasets" and corpus["languages"]["en"]["chars"] == 3000
    assert corpus["languages"]["en"]["documents"] < len(lines) / 5
    assert result.record["verification"]["logits"]["passed"]


def test_logits_are_still_checked_when_no_held_out_sentence_tokenizes_identically(tmp_path):
    (tmp_path / "en.txt").write_text("The the of and in a to is was for on that by\n", encoding="utf-8")
    tokenizer = make_tokenizer("gemma")

    result = hfprune.trim_vocab(
        make_model(tokenizer), tokenizer, langs="en", source=str(tmp_path), word_lists=False, **FAST
    )  # the corpus alone: a word list would make held-out sentences tokenize whole

    logits = result.record["verification"]["logits"]
    assert result.record["verification"]["kept"]["en"]["identical"] == 0
    assert logits["sentences"] == logits["kept_token_runs"] == 1 and logits["tokens"] >= 2 and logits["passed"]
