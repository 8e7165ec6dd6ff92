"""The tiny trained model: loadable with plain transformers, better than a unigram, sensitive to pruning, cached."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hfprune import tiny_model
from hfprune.constants import CACHE_DIR_ENV, DATA_DIR_ENV
from hfprune.errors import CalibrationSourceError, DataFolderError

from .data_dirs import data_dir

EVAL_SENTENCES = 120  # of FLORES devtest's 1012: enough for a stable perplexity, cheap enough for CI


def flores_ids(tokenizer, lang: str) -> list[int]:
    lines = (data_dir() / "flores" / f"{lang}.devtest.txt").read_text(encoding="utf-8").splitlines()
    return tokenizer("\n".join(lines[:EVAL_SENTENCES]), add_special_tokens=False).input_ids


@torch.no_grad()
def perplexity(model, ids: list[int], bos_id: int, window: int = 256) -> float:
    """Mean next-token loss over BOS-prefixed windows, written independently of tiny_model's helper."""
    body = window - 1
    usable = len(ids) // body * body  # the ragged tail is dropped: every window is full, one batch
    rows = torch.tensor(ids[:usable]).view(-1, body)
    batch = torch.cat([torch.full((len(rows), 1), bos_id), rows], dim=1)
    return math.exp(model(input_ids=batch, labels=batch).loss.item())


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tokenizer


@pytest.mark.slow
def test_loads_with_plain_auto_classes_as_a_gqa_llama(loaded):
    model, tokenizer = loaded
    config = model.config
    assert config.model_type == "llama"
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    assert config.intermediate_size % 8 == 0 and config.hidden_size % 8 == 0  # 2:4 and 4:8 fit
    assert config.vocab_size == len(tokenizer) and config.max_position_embeddings == 1024
    assert {tokenizer.pad_token, tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token} == {
        "<pad>",
        "</s>",
        "<unk>",
        "<s>",
    }


@pytest.mark.slow
def test_tokenizer_adds_bos_and_round_trips_every_script(loaded):
    _, tokenizer = loaded
    for text in ["Hallo Welt", "Привет, мир", "你好，世界", "مرحبا بالعالم", "Habari ya dunia"]:
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


@pytest.mark.slow
def test_flores_perplexity_is_well_below_a_unigram_in_every_language(loaded):
    model, tokenizer = loaded
    texts = tiny_model.training_texts(data_dir())
    for lang in tiny_model.LANGUAGES:
        eval_ids = flores_ids(tokenizer, lang)
        train_ids = tokenizer(texts[lang], add_special_tokens=False).input_ids
        unigram = tiny_model.unigram_perplexity(train_ids, eval_ids, len(tokenizer))
        model_ppl = perplexity(model, eval_ids, tokenizer.bos_token_id)
        assert model_ppl < unigram / 2, f"{lang}: model {model_ppl:.1f} vs unigram {unigram:.1f}"


@pytest.mark.slow
def test_magnitude_pruning_raises_perplexity_measurably(loaded):
    """The reason this model exists: pruning damage must show up in its perplexity."""
    model, tokenizer = loaded
    ids = flores_ids(tokenizer, "en")
    dense = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    results = {}
    try:
        for sparsity in (0.5, 0.7):
            for module in model.model.layers.modules():
                if isinstance(module, torch.nn.Linear):
                    weight = module.weight.data
                    k = int(weight.numel() * sparsity)
                    threshold = weight.abs().flatten().kthvalue(k).values
                    weight[weight.abs() <= threshold] = 0
            results[sparsity] = perplexity(model, ids, tokenizer.bos_token_id)
            model.load_state_dict(dense)
    finally:
        model.load_state_dict(dense)
    baseline = perplexity(model, ids, tokenizer.bos_token_id)
    assert baseline * 1.02 < results[0.5] < results[0.7], (baseline, results)
    assert results[0.7] > baseline * 1.15, (baseline, results)


@pytest.mark.slow
def test_training_record_describes_the_recipe_data_and_quality(tiny_model_dir: Path):
    record = json.loads((tiny_model_dir / tiny_model.TRAINING_RECORD).read_text())
    assert record["data_sha256"] == tiny_model.data_hashes(data_dir())
    assert record["languages"] == list(tiny_model.LANGUAGES)
    assert set(record["flores_perplexity"]) == set(tiny_model.LANGUAGES)
    for lang, ppl in record["flores_perplexity"].items():
        assert ppl < record["unigram_perplexity"][lang], lang
    assert 0 < record["final_loss"] < record["loss_curve"][0]
    assert tiny_model_dir.name.endswith(tiny_model.recipe_key(tiny_model.Recipe(), data_dir()))


@pytest.mark.slow
def test_second_call_returns_the_cache_without_training(tiny_model_dir: Path, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("tiny_model_path retrained a cached model")

    monkeypatch.setattr(tiny_model, "train_tiny_model", must_not_train)
    weights = tiny_model_dir / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    started = time.perf_counter()
    assert tiny_model.tiny_model_path() == tiny_model_dir
    assert time.perf_counter() - started < 5
    assert weights.stat().st_mtime_ns == mtime


# --- cache mechanics, with training replaced by a fake (no CPU minutes) ----------------------------
def _fake_training(calls: list[Path], fail: bool):
    def fake(out_dir: Path, **kwargs) -> dict:
        calls.append(out_dir)
        (out_dir / "model.safetensors").write_bytes(b"half written")
        if fail:
            raise KeyboardInterrupt  # like a user pressing Ctrl-C mid-training
        (out_dir / tiny_model.TRAINING_RECORD).write_text("{}")
        return {}

    return fake


def test_interrupted_training_leaves_no_folder_and_a_later_call_trains_once(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    calls: list[Path] = []
    monkeypatch.setattr(tiny_model, "train_tiny_model", _fake_training(calls, fail=True))
    with pytest.raises(KeyboardInterrupt):
        tiny_model.tiny_model_path()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []

    monkeypatch.setattr(tiny_model, "train_tiny_model", _fake_training(calls, fail=False))
    first = tiny_model.tiny_model_path()
    second = tiny_model.tiny_model_path()
    assert first == second and first.parent == tmp_path and len(calls) == 2
    assert (first / "model.safetensors").read_bytes() == b"half written"  # the fake's complete output
    assert all(not p.exists() for p in calls)  # temporary folders are gone


def test_train_if_missing_false_raises_instead_of_training(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    with pytest.raises(CalibrationSourceError, match="python -m hfprune.tiny_model"):
        tiny_model.tiny_model_path(train_if_missing=False)
    assert os.listdir(tmp_path) == []


def test_missing_data_folder_says_how_to_point_at_one(tmp_path: Path, monkeypatch):
    with pytest.raises(DataFolderError, match="nowhere, which is not a folder"):
        tiny_model.tiny_model_path(data_dir=tmp_path / "nowhere")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(DataFolderError, match=f"{DATA_DIR_ENV} names .*elsewhere, which is not a folder"):
        tiny_model.tiny_model_path()


# --- outlier channels: an exact reparameterisation ------------------------------------------------
@pytest.mark.slow
def test_trained_model_has_llm_like_outlier_channels_at_every_linear_input(loaded, tiny_model_dir: Path):
    """Measured on FLORES (not the training rows that chose the channels): max/median channel norm >= 8."""
    model, tokenizer = loaded
    ids = torch.tensor(flores_ids(tokenizer, "de")[:1024]).view(4, 256)
    energy, _ = tiny_model._input_energy(model, ids)
    spreads = [(e.sqrt().max() / e.sqrt().median()).item() for e in energy.values()]
    assert len(spreads) == 7 * model.config.num_hidden_layers and min(spreads) >= 8, spreads
    record = json.loads((tiny_model_dir / tiny_model.TRAINING_RECORD).read_text())["outlier_channels"]
    assert record["max_logit_change"] < 1e-3 and record["spread_before"][1] < 8 <= record["spread_after"][0]


def test_outlier_reparameterisation_keeps_the_function_and_moves_weight_into_activations():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).eval()
    for module in model.modules():  # random RMSNorm gains, so the gain is not trivially all ones
        if hasattr(module, "variance_epsilon"):
            module.weight.data.uniform_(0.5, 1.5)
    rows = torch.randint(0, 64, (6, 16), generator=torch.Generator().manual_seed(1))
    before = model(input_ids=rows).logits
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    recipe = dataclasses.replace(tiny_model.Recipe(), outlier_fraction=0.05, outlier_scale=10.0)

    record = tiny_model._grow_outlier_channels(model, rows, recipe)

    torch.testing.assert_close(model(input_ids=rows).logits, before, atol=1e-4, rtol=1e-4)
    assert record["spread_after"][0] > 5 * record["spread_before"][0]
    channels = record["channels"]["layers.0.mlp.up_proj->down_proj"]
    assert len(channels) == round(0.05 * 96)
    down = model.model.layers[0].mlp.down_proj.weight.detach()
    torch.testing.assert_close(down[:, channels] * 10, weights["model.layers.0.mlp.down_proj.weight"][:, channels])
    untouched = [c for c in range(96) if c not in channels]
    assert torch.equal(down[:, untouched], weights["model.layers.0.mlp.down_proj.weight"][:, untouched])
