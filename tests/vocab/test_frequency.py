"""The frequency source of a trimmed vocabulary: running text mixed with word lists, per language, shared by
weights, filled to ``size`` or to a ``coverage``; and what it records per language."""

from __future__ import annotations

from collections import Counter

import pytest

import hfprune
from hfprune.cli import main
from hfprune.errors import VocabSizeError
from hfprune.vocab import frequency
from hfprune.vocab.frequency import LanguageFrequencies, language_frequencies, rank_tokens, word_list_counts

from .factory import make_model, make_tokenizer

FAST = dict(verify_sentences=200, logit_sentences=2, measure_speed=False, list_words=3000)


def test_weights_parse_from_the_languages_and_are_checked():
    settings = hfprune.VocabSettings(langs="en:2,sw:1,de")
    assert settings.langs == ("en", "sw", "de") and settings.weights == (2.0, 1.0, 1.0)
    assert hfprune.VocabSettings(langs="en,sw").weights is None
    for bad, says in (("en:0", "must be positive"), ("en:x", "is a number"), ("en:1,en:2", "twice")):
        with pytest.raises(VocabSizeError, match=says):
            hfprune.VocabSettings(langs=bad)
    with pytest.raises(VocabSizeError, match="share of token occurrences"):
        hfprune.VocabSettings(langs="en", coverage=1.5)
    with pytest.raises(VocabSizeError, match="one positive weight per"):
        hfprune.VocabSettings(langs=("en", "sw"), weights=(1.0,))


def test_each_source_is_normalised_before_mixing():
    text = Counter({1: 900, 2: 100, 3: 1})
    listed = (Counter({2: 5.0, 4: 5.0}), {"name": "list"})
    mixed = language_frequencies(text, {"key": "t"}, listed, min_count=2, list_share=0.5)
    assert 3 not in mixed.shares  # seen once, min_count 2
    assert mixed.shares == pytest.approx({1: 0.45, 2: 0.05 + 0.25, 4: 0.25})
    assert sum(mixed.shares.values()) == pytest.approx(1.0)
    assert mixed.sources["text"]["share"] == 0.5 and mixed.sources["word_list"]["share"] == 0.5
    alone = language_frequencies(text, {}, None)
    assert alone.shares[1] == pytest.approx(900 / 1001) and "word_list" not in alone.sources


def test_a_language_with_more_text_gets_no_more_room_and_weights_share_the_budget():
    # en's text is 100x sw's, but both are normalised: at equal weights sw's top token outranks en's second
    en = LanguageFrequencies({10: 0.6, 11: 0.3, 12: 0.1})
    sw = LanguageFrequencies({20: 0.7, 21: 0.2, 22: 0.1})
    assert rank_tokens({"en": en, "sw": sw}, {"en": 1, "sw": 1}) == [20, 10, 11, 21, 12, 22]
    ranked = rank_tokens({"en": en, "sw": sw}, {"en": 4, "sw": 1})
    assert ranked[:3] == [10, 11, 20]  # en weighs 4: its first two come before sw's first


def test_a_coverage_target_keeps_the_fewest_tokens_per_language():
    en = LanguageFrequencies({10: 0.6, 11: 0.3, 12: 0.1})
    sw = LanguageFrequencies({20: 0.5, 21: 0.45, 22: 0.05})
    ranked = rank_tokens({"en": en, "sw": sw}, {"en": 1, "sw": 1}, coverage=0.9)
    assert set(ranked) == {10, 11, 20, 21}
    assert min(en.coverage(set(ranked)), sw.coverage(set(ranked))) >= 0.9 - 1e-9


def test_word_lists_are_expanded_to_the_forms_a_tokenizer_sees_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HFPRUNE_CACHE", str(tmp_path))
    tokenizer = make_tokenizer("gemma")
    counts, described = word_list_counts(tokenizer, "en", words=500)
    the = tokenizer(" the", add_special_tokens=False)["input_ids"]
    assert len(the) == 1 and counts[the[0]] > 0
    top = max(counts, key=counts.get)
    assert top in tokenizer(" the The", add_special_tokens=False)["input_ids"] or counts[top] >= counts[the[0]]
    assert described["words"] == 500 and 0 < described["running_text_share"] < 1 and "CC BY-SA" in described["licence"]
    cached = list((tmp_path / "word-lists").glob("*-en-500-*.json"))
    assert len(cached) == 1

    def refuse(*_args, **_kwargs):
        raise AssertionError("tokenized again although cached")

    monkeypatch.setattr(frequency, "_tokenized", refuse)
    again, _ = word_list_counts(tokenizer, "en", words=500)
    assert again == pytest.approx(counts)
    cached[0].write_text("{not json", encoding="utf-8")  # a broken cache is recomputed, never trusted
    monkeypatch.undo()
    monkeypatch.setenv("HFPRUNE_CACHE", str(tmp_path))
    assert word_list_counts(tokenizer, "en", words=500)[0] == pytest.approx(counts)
    assert word_list_counts(tokenizer, "sw", words=500) is None  # wordfreq has no Swahili list


def test_size_fills_the_whole_vocabulary_and_each_language_says_what_it_kept():
    tokenizer = make_tokenizer("gemma")
    full = len(tokenizer)
    result = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en,de,sw", size=1200, **FAST)
    record = result.record
    assert 1100 <= record["rows_after"] <= 1200 < full
    per = record["per_language"]
    assert set(per) == {"en", "de", "sw"}
    for lang, row in per.items():
        assert 0 < row["coverage_held_out"] <= 1
        assert row["coverage_held_out"] == record["verification"]["kept"][lang]["token_coverage"]
        assert 0 < row["coverage_source"] <= 1 and 0 < row["tokens_kept"] <= row["tokens_used"]
    assert "word_list" in per["en"]["sources"] and "word_list" not in per["sw"]["sources"]
    bigger = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en,de,sw", size=2000, **FAST).record
    for lang in per:  # more room covers at least as much of every language
        assert bigger["per_language"][lang]["coverage_source"] >= per[lang]["coverage_source"]


def test_word_lists_cover_held_out_text_better_than_the_text_alone():
    tokenizer = make_tokenizer("gemma")
    settings = dict(FAST, list_words=20000, size=1000)
    listed = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", **settings).record
    alone = hfprune.trim_vocab(make_model(tokenizer), tokenizer, langs="en", word_lists=False, **settings).record
    assert "word_list" not in alone["per_language"]["en"]["sources"]
    assert listed["per_language"]["en"]["coverage_held_out"] > alone["per_language"]["en"]["coverage_held_out"]


def test_a_coverage_target_is_met_on_the_source_for_every_language():
    tokenizer = make_tokenizer("gemma")
    record = hfprune.trim_vocab(
        make_model(tokenizer), tokenizer, langs="en,sw", coverage=0.95, word_lists=False, **FAST
    ).record
    assert all(row["coverage_source"] >= 0.95 - 1e-9 for row in record["per_language"].values())
    assert record["settings"]["coverage"] == 0.95


def test_the_command_line_takes_weights_size_and_coverage(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "trimmed"
    args = ["trim-vocab", str(tiny_model_dir), "--langs", "en:2,sw:1", "--out", str(out), "--vocab-size", "300"]
    extra = ["--vocab-verify-sentences", "100", "--vocab-list-words", "2000", "--vocab-no-speed", "--json"]
    assert main([*args, *extra]) == 0
    import json

    record = json.loads(capsys.readouterr().out)
    assert record["settings"]["weights"] == [2.0, 1.0] and record["languages"] == ["en", "sw"]
    assert record["rows_after"] <= 300 and set(record["per_language"]) == {"en", "sw"}
    code = main([*args[:-2], "--vocab-coverage", "0", "--out", str(tmp_path / "o2"), *extra])
    assert code == 2 and not (tmp_path / "o2").exists()


def test_one_trim_gives_the_size_coverage_curve_and_the_card_plots_it(tiny_model_dir, tmp_path):
    from hfprune.card import write_card
    from hfprune.io import is_hfprune_plot
    from hfprune.vocab.curve import CURVE_FILE

    out = tmp_path / "trimmed"
    settings = hfprune.VocabSettings(langs="en,sw", size=300, list_words=2000, verify_sentences=100)
    result = hfprune.trim_vocab_pretrained(str(tiny_model_dir), out, settings)
    curve = result.record["curve"]
    chosen = curve["rows"].index(curve["chosen_rows"])
    assert curve["chosen_rows"] == result.record["rows_after"] and curve["rows"] == sorted(curve["rows"])
    assert curve["parameters"][chosen] == result.record["parameters_after"]
    for lang, values in curve["coverage"].items():
        assert values == sorted(values)  # more room never covers less
        # the curve's point at the chosen size is the coverage the built-in check measured
        assert values[chosen] == pytest.approx(result.record["per_language"][lang]["coverage_held_out"])
    assert curve["rows"][-1] > curve["chosen_rows"]  # it says what a larger budget would have kept
    assert is_hfprune_plot(out / CURVE_FILE)
    card = write_card(out).read_text()
    assert f"]({CURVE_FILE})" in card and "What each kept language kept" in card
    assert "| en | 50% |" in card and "wordfreq" in card and "| sw | 50% |" in card


def test_wikipedia_is_a_named_streamed_source_and_offline_says_so(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from hfprune.calibration import SourceSpec

    source = hfprune.VocabSettings(langs="en", source="wikipedia").source
    assert isinstance(source, SourceSpec) and source.location == "wikimedia/wikipedia"
    assert source.config_pattern == "20231101.{lang}" and source.text_field == "text"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "o"
    code = main(["trim-vocab", str(tiny_model_dir), "--langs", "en", "--vocab-source", "wikipedia", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "wikimedia/wikipedia" in err and "OfflineModeIsEnabled" in err and not out.exists()
