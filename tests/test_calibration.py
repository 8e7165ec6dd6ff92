"""Language mixes, text sources and reproducible sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hfprune.calibration import (
    DatasetSource,
    FolderSource,
    Mix,
    build_calibration,
    open_source,
    parse_mix,
)
from hfprune.errors import (
    CalibrationMixError,
    CalibrationSourceError,
    NotEnoughCalibrationTextError,
    UnknownLanguageError,
)

from .data_dirs import data_dir
from .model_factory import make_tokenizer

DATA = data_dir()


@pytest.fixture(scope="module")
def tokenizer():
    assert DATA is not None, "the shared data folder (../shared/data) is required"
    texts = []
    for lang in ("en", "sw", "de", "zh"):
        texts += (DATA / "calib" / "ntrex" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:200]
    return make_tokenizer(texts, vocab_size=600)


def test_parse_mix_normalises_codes():
    mix = parse_mix("en:64, swa:32,zh-hans:8")
    assert [(e.language, e.samples) for e in mix] == [("en", 64), ("sw", 32), ("zh-Hans", 8)]


@pytest.mark.parametrize(
    "spec,error,match",
    [
        ("en:", CalibrationMixError, "LANG:N_SAMPLES"),
        ("en:-3", CalibrationMixError, "positive integer"),
        ("en:0", CalibrationMixError, "positive integer"),
        ("en:abc", CalibrationMixError, "positive integer"),
        ("en", CalibrationMixError, "LANG:N_SAMPLES"),
        (":5", CalibrationMixError, "LANG:N_SAMPLES"),
        ("en:4,,sw:4", CalibrationMixError, "empty entry"),
        ("", CalibrationMixError, "empty entry"),
        ("en:4,eng:8", CalibrationMixError, "twice"),
        ("xx:10", UnknownLanguageError, "'xx' is not a language code"),
    ],
)
def test_malformed_mixes_are_refused(spec, error, match):
    with pytest.raises(error, match=match):
        parse_mix(spec)


def test_even_mix_spreads_the_default_128():
    mix = Mix.even(["sw", "en", "zh"])
    assert [(e.language, e.samples) for e in mix] == [("en", 43), ("sw", 43), ("zh", 42)]
    assert str(mix) == "en:43,sw:43,zh:42"
    assert sum(e.samples for e in Mix.even([f"l{i}" for i in range(200)])) == 128


def test_shared_source_merges_corpora_per_language():
    source = open_source(None)
    assert {"en", "sw", "zh", "qu", "ht"} <= set(source.languages())
    en_docs = source.documents("en", min_chars=0)
    ntrex = (DATA / "calib" / "ntrex" / "en.txt").read_text(encoding="utf-8").splitlines()
    udhr = (DATA / "calib" / "udhr" / "en.txt").read_text(encoding="utf-8").splitlines()
    assert len(en_docs) > len([l for l in ntrex if l.strip()])
    assert udhr[-1] in en_docs or udhr[-2] in en_docs


def test_samples_are_reproducible_and_language_tagged(tokenizer):
    source = open_source(None)
    a = build_calibration(tokenizer, source, "en:4,sw:3", seqlen=64, seed=7)
    b = build_calibration(tokenizer, source, "en:4,sw:3", seqlen=64, seed=7)
    c = build_calibration(tokenizer, source, "en:4,sw:3", seqlen=64, seed=8)
    assert torch.equal(a.input_ids, b.input_ids) and a.sample_hashes == b.sample_hashes
    assert a.sample_hashes != c.sample_hashes
    assert a.input_ids.shape == (7, 64)
    assert a.languages == ["en"] * 4 + ["sw"] * 3
    assert torch.all(a.input_ids[:, 0] == tokenizer.bos_token_id)  # the model's own BOS convention
    assert a.spec["sample_hashes"] == a.sample_hashes and a.spec["mix"] == "en:4,sw:3"
    assert len(set(a.sample_hashes)) == 7  # non-overlapping windows: no duplicate samples
    # the English samples do not change when another language joins the mix
    d = build_calibration(tokenizer, source, "en:4,de:2", seqlen=64, seed=7)
    assert d.sample_hashes[:4] == a.sample_hashes[:4]


def test_too_little_text_says_how_much_there_is(tokenizer):
    with pytest.raises(NotEnoughCalibrationTextError, match=r"room for \d+ samples of 512 tokens, but 100000"):
        build_calibration(tokenizer, open_source(None), "sw:100000", seqlen=512)


def test_language_without_text_names_what_exists(tokenizer, tmp_path):
    (tmp_path / "en.txt").write_text("hello world\n" * 200)
    with pytest.raises(CalibrationSourceError, match="no text for 'de'; it has: en"):
        build_calibration(tokenizer, open_source(tmp_path), "de:2", seqlen=16)


def test_folder_source_reads_txt_and_jsonl(tokenizer, tmp_path):
    (tmp_path / "en.txt").write_text("\n".join(f"line {i} of english text" for i in range(300)))
    with (tmp_path / "sw.jsonl").open("w") as f:
        for i in range(300):
            f.write(json.dumps({"text": f"sentensi ya {i} kwa Kiswahili"}) + "\n")
    (tmp_path / "notes.txt").write_text("not a language file\n" * 50)
    source = FolderSource(tmp_path)
    calib = build_calibration(tokenizer, source, None, seqlen=32)
    # no mix: 128 samples spread over the files that are languages (notes.txt is not)
    assert sorted(set(calib.languages)) == ["en", "sw"] and len(calib) == 128
    assert calib.spec["source"]["kind"] == "folder" and "sw.jsonl" in calib.spec["source"]["files"]


def test_broken_jsonl_names_the_line(tmp_path, tokenizer):
    (tmp_path / "en.jsonl").write_text('{"text": "ok"}\n{"body": "wrong field"}\n')
    with pytest.raises(CalibrationSourceError, match=r"en.jsonl:2"):
        build_calibration(tokenizer, FolderSource(tmp_path), "en:1", seqlen=8)


def test_empty_text_is_refused(tmp_path, tokenizer):
    (tmp_path / "en.txt").write_text("\n\n")
    with pytest.raises(CalibrationSourceError, match="empty"):
        build_calibration(tokenizer, FolderSource(tmp_path), "en:1", seqlen=8)


def test_missing_folder_and_garbage_source_are_refused():
    with pytest.raises(CalibrationSourceError, match="neither an existing folder nor a dataset id"):
        open_source("./no/such/folder", langs=["en"])
    with pytest.raises(CalibrationSourceError, match="needs an explicit --calib"):
        open_source("someone/some-corpus")


def _local_dataset_repo(root: Path) -> Path:
    """A dataset laid out as on the Hub: one config per language declared in the README front matter."""
    (root / "data").mkdir(parents=True)
    configs = []
    for lang in ("en", "sw"):
        with (root / "data" / f"{lang}.jsonl").open("w") as f:
            for i in range(400):
                f.write(json.dumps({"content": f"{lang} document {i} with some words in it"}) + "\n")
        configs.append(f"- config_name: wiki.{lang}\n  data_files:\n  - split: train\n    path: data/{lang}.jsonl\n")
    (root / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n")
    return root


def test_datasets_source_with_a_per_language_config_pattern(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = _local_dataset_repo(tmp_path / "corpus")
    source = DatasetSource(str(repo), langs=["en", "sw"], config_pattern="wiki.{lang}", text_field="content")
    calib = build_calibration(tokenizer, source, "en:2,sw:2", seqlen=32, seed=1)
    assert calib.languages == ["en", "en", "sw", "sw"]
    assert calib.spec["source"]["config_pattern"] == "wiki.{lang}"
    bad = DatasetSource(str(repo), langs=["de"], config_pattern="wiki.{lang}", text_field="content")
    with pytest.raises(CalibrationSourceError, match="config 'wiki.de'"):
        build_calibration(tokenizer, bad, "de:1", seqlen=32)
