"""``--epochs``: a language with little text reaches the token budget by passing over it several times, each pass
in its own seeded order, and a resume-relevant digest that says so."""

from __future__ import annotations

import pytest
import torch

from hfprune.errors import HealingSettingsError, NotEnoughHealingTextError
from hfprune.healing import HealSettings, heal
from hfprune.healing.data import HealingData
from hfprune.models import load_model

from .factory import SEQLEN, dense_folder, pruned_folder, small_source


def test_passes_repeat_every_sample_once_each_in_its_own_fixed_order():
    data = HealingData(torch.arange(12).reshape(6, 2), ["en", "sw"] * 3, [f"h{i}" for i in range(6)])
    twice = data.repeated(3, seed=5)
    assert len(twice) == 18 and data.repeated(1, seed=5) is data
    assert twice.sample_hashes[:6] == data.sample_hashes  # the first pass is the drawn order
    passes = [twice.sample_hashes[i : i + 6] for i in (0, 6, 12)]
    assert all(sorted(p) == sorted(data.sample_hashes) for p in passes) and passes[1] != passes[2]
    assert twice.sample_hashes == data.repeated(3, seed=5).sample_hashes  # the same on every run
    for row, digest in zip(twice.input_ids, twice.sample_hashes):  # rows move with their hashes
        assert int(row[0]) == 2 * int(digest[1:])
    assert twice.record["epochs"] == 3 and twice.digest != data.digest
    with pytest.raises(HealingSettingsError, match="--epochs must be 1 or more"):
        HealSettings(epochs=0)


def test_a_budget_too_large_for_the_text_fits_in_several_passes(tmp_path):
    source = small_source(tmp_path / "text", lines=12)
    dense = dense_folder(tmp_path / "dense")
    student = pruned_folder(dense, tmp_path / "p50", source=source)
    common = dict(calibration="en:1,sw:1", calib_source=source, seqlen=SEQLEN, batch_size=2, device="cpu")
    common.update(quality_sentences=0, lr=1e-3)

    def run(**overrides):
        s, t = load_model(student), load_model(dense)
        settings = HealSettings(**common, **overrides)
        return heal(s.model, t.model, s.tokenizer, settings, teacher_tokenizer=t.tokenizer)

    tokens = SEQLEN * 80  # 40 windows per language: 12 lines hold fewer than 30
    with pytest.raises(NotEnoughHealingTextError, match="--epochs"):
        run(tokens=tokens)
    record = run(tokens=tokens, epochs=4).record
    assert record["epochs"] == 4 and record["data"]["samples"] == 20 and record["tokens_seen"] == tokens
    assert record["steps"] == 40 and record["settings"]["epochs"] == 4
    assert record["zeros_after"]["zeros"] == record["zeros_before"]["zeros"]
