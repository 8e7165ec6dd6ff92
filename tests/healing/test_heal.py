"""Healing: zeros stay zero to the last weight, the KD loss falls on held-out text, the healing text is never the
mask's, a trimmed student heals against its untrimmed teacher, and a resumed run ends where an unbroken one does."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_post_hook

import hfprune
from hfprune.calibration import build_calibration, open_source
from hfprune.card import write_card
from hfprune.constants import HEAL_CHECKPOINT_RECORD, METADATA_FILE, VOCAB_MAP_FILE
from hfprune.errors import HealCheckpointError, HealingInterruptedError, HealingSettingsError
from hfprune.healing import HealSettings, heal, heal_pretrained
from hfprune.healing.checkpoints import checkpoint_folder_for
from hfprune.healing.loss import kd_loss
from hfprune.models import all_prunable_layers, load_model

from ..model_factory import save_model_folder
from .factory import SEQLEN, dense_folder, pruned_folder, small_source

FAST = dict(seqlen=SEQLEN, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("heal")
    source = small_source(root / "text")
    dense = dense_folder(root / "dense")
    return {
        "root": root,
        "source": source,
        "dense": dense,
        "unstructured": pruned_folder(dense, root / "p50", source=source),
        "2:4": pruned_folder(dense, root / "p24", structure="2:4"),
    }


def _prunable(folder: Path) -> dict[str, torch.Tensor]:
    loaded = load_model(folder)
    return {layer.name: layer.module.weight.detach().clone() for layer in all_prunable_layers(loaded.model)}


def _record(folder: Path) -> dict:
    return json.loads((folder / METADATA_FILE).read_text())


def _assert_zeros_kept_and_rest_trained(student: Path, healed: Path) -> None:
    before, after = _prunable(student), _prunable(healed)
    assert before.keys() == after.keys()
    for name, weight in before.items():
        zeros = weight == 0
        assert zeros.any(), name
        assert torch.equal(after[name][zeros], torch.zeros_like(after[name][zeros])), f"{name}: a zero moved"
        assert (after[name] == 0).sum() == zeros.sum(), f"{name}: the zeros are not the same set"
        assert (after[name][~zeros] != weight[~zeros]).float().mean() > 0.9, f"{name}: did not train"
    assert _record(healed)["healing"]["achieved_sparsity"] == pytest.approx(_record(student)["achieved_sparsity"])
    assert _record(healed)["achieved_sparsity"] == _record(student)["achieved_sparsity"]


@pytest.mark.parametrize("kind", ["unstructured", "2:4"])
def test_full_healing_keeps_every_zero_and_trains_the_rest(models, kind, tmp_path):
    out = tmp_path / "healed"
    settings = HealSettings(calibration="en:1,sw:1", tokens=SEQLEN * 8, lr=1e-3, calib_source=models["source"], **FAST)
    result = heal_pretrained(models[kind], str(models["dense"]), out, settings)
    _assert_zeros_kept_and_rest_trained(models[kind], out)
    record = _record(out)["healing"]
    assert record["mode"] == "full" and record["steps"] == 4 and record["tokens_seen"] == SEQLEN * 8
    assert record["teacher"]["id"] == "dense" and "/" not in json.dumps(record["teacher"]).replace('"/', "")
    assert result.record["loss_start"]["loss"] > 0 and "loss" in result.record["loss_end"]
    assert not checkpoint_folder_for(out).exists()


def test_lora_healing_merges_then_masks_again(models, tmp_path):
    out = tmp_path / "lora"
    settings = HealSettings(
        calibration="en:1,sw:1", tokens=SEQLEN * 8, mode="lora", lr=2e-2, calib_source=models["source"], **FAST
    )
    heal_pretrained(models["unstructured"], str(models["dense"]), out, settings)
    _assert_zeros_kept_and_rest_trained(models["unstructured"], out)
    record = _record(out)["healing"]
    assert record["mode"] == "lora" and record["lora"] == "merged, then re-masked"
    assert not any("lora" in key for key in load_file(out / "model.safetensors"))  # merged: plain weights
    # both ways measured: the adapters kept unmerged beside the zeros, and merged then re-masked (published)
    rows = record["quality"]["languages"]
    assert set(rows) == {"en", "sw"} and all(row["adapter_kept"] != row["healed"] for row in rows.values())
    section = write_card(out).read_text().split("## Healing")[1].split("\n## ")[0]
    assert "LoRA adapters kept, unmerged" in section and f"| {rows['en']['adapter_kept']:.4f} |" in section


def test_the_healing_text_is_never_the_masks_and_both_are_recorded(models, tmp_path):
    out = tmp_path / "healed"
    # 20 samples per language from a small text: the draw meets the mask's 8 per language
    settings = HealSettings(calibration="en:1,sw:1", tokens=SEQLEN * 40, calib_source=models["source"], **FAST)
    heal_pretrained(models["unstructured"], str(models["dense"]), out, settings)
    mask = set(_record(models["unstructured"])["calibration"]["sample_hashes"])
    data = _record(out)["healing"]["data"]
    assert len(mask) == 16 and set(data["mask_sample_hashes"]) == mask
    assert len(data["sample_hashes"]) == 40 and not set(data["sample_hashes"]) & mask
    assert sum(data["dropped_as_mask_samples"].values()) > 0, "the test text should make the draws collide"


def test_the_kd_loss_on_held_out_text_goes_down(models):
    student = load_model(models["unstructured"])
    teacher = load_model(models["dense"])
    source = open_source(models["source"])
    held_out = build_calibration(student.tokenizer, source, "en:4,sw:4", seqlen=SEQLEN, seed=1234).input_ids

    def held_out_kd(model) -> float:
        with torch.no_grad():
            return float(kd_loss(model(held_out).logits, teacher.model(held_out).logits, 2.0))

    before = held_out_kd(student.model)
    settings = HealSettings(
        calibration="en:1,sw:1", tokens=SEQLEN * 40, kd_weight=1.0, lr=2e-4, calib_source=models["source"], **FAST
    )
    result = heal(student.model, teacher.model, student.tokenizer, settings, teacher_tokenizer=teacher.tokenizer)
    after = held_out_kd(result.model)
    assert after < 0.8 * before, (before, after)


def _stop_at(step: int):
    def callback(done: int) -> None:
        if done == step:
            raise KeyboardInterrupt

    return callback


def _resumable(models) -> HealSettings:
    """Six steps with a checkpoint every two: the settings the Ctrl-C tests stop and resume."""
    return HealSettings(
        calibration="en:1,sw:1", tokens=SEQLEN * 12, lr=1e-3, checkpoint_every=2, calib_source=models["source"], **FAST
    )


@pytest.fixture(scope="module")
def unbroken(models) -> Path:
    """The run of :func:`_resumable` that nothing stops, healed once for every test that compares with it."""
    out = models["root"] / "unbroken"
    heal_pretrained(models["unstructured"], str(models["dense"]), out, _resumable(models))
    return out


def test_resume_after_ctrl_c_ends_where_an_unbroken_run_does(models, unbroken, tmp_path):
    settings = _resumable(models)
    student, teacher = models["unstructured"], str(models["dense"])

    out = tmp_path / "resumed"
    with pytest.raises(HealingInterruptedError, match="--resume"):
        heal_pretrained(student, teacher, out, settings, on_step=_stop_at(3))
    checkpoints = checkpoint_folder_for(out)
    assert json.loads((checkpoints / HEAL_CHECKPOINT_RECORD).read_text())["step"] == 3 and not out.exists()
    with pytest.raises(HealCheckpointError, match="--resume to continue it"):
        heal_pretrained(student, teacher, out, settings)  # neither --resume nor --overwrite
    with pytest.raises(HealCheckpointError, match="settings that changed: lr"):
        heal_pretrained(student, teacher, out, settings.with_overrides(lr=5e-4), resume=True)
    heal_pretrained(student, teacher, out, settings, resume=True)

    whole, resumed = load_file(unbroken / "model.safetensors"), load_file(out / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    record = _record(out)["healing"]
    assert record["resumed_from_step"] == 3 and record["steps"] == 6
    assert record["loss_start"] == _record(unbroken)["healing"]["loss_start"]
    assert not checkpoints.exists()  # removed once the output was written


def test_a_ctrl_c_inside_the_optimizer_step_saves_that_whole_step_and_resumes_to_the_unbroken_run(
    models, unbroken, tmp_path
):
    """SIGINT arriving while AdamW writes the weights: the step finishes first, so the checkpoint names the step
    its weights are at, and ``--resume`` does not apply that batch twice."""
    settings = _resumable(models)
    student, teacher = models["unstructured"], str(models["dense"])
    updates = []

    def ctrl_c_on_the_third_update(optimizer, args, kwargs) -> None:
        updates.append(1)
        if len(updates) == 3:  # the weights are written, the schedule and the mask not yet
            signal.raise_signal(signal.SIGINT)

    out = tmp_path / "resumed"
    hook = register_optimizer_step_post_hook(ctrl_c_on_the_third_update)
    try:
        with pytest.raises(HealingInterruptedError, match="interrupted at step 3 of 6"):
            heal_pretrained(student, teacher, out, settings)
    finally:
        hook.remove()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back as it was
    assert json.loads((checkpoint_folder_for(out) / HEAL_CHECKPOINT_RECORD).read_text())["step"] == 3
    heal_pretrained(student, teacher, out, settings, resume=True)
    whole, resumed = load_file(unbroken / "model.safetensors"), load_file(out / "model.safetensors")
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert _record(out)["healing"]["tokens_seen"] == _record(unbroken)["healing"]["tokens_seen"]


def test_settings_out_of_range_are_refused_before_any_work():
    for bad, says in (
        (dict(tokens=0), "--tokens must be a positive"),
        (dict(tokens=-5), "--tokens must be a positive"),
        (dict(kd_weight=1.5), "--kd-weight"),
        (dict(mode="qlora"), "--heal-mode"),
        (dict(temperature=0), "--temperature"),
        (dict(hidden_weight=-1.0), "--hidden-weight must be 0 or more"),
        (dict(mode="lora", train_embeddings=True), "--train-embeddings trains whole embedding weights"),
    ):
        with pytest.raises(HealingSettingsError, match=says):
            HealSettings(**bad)


def test_a_trimmed_student_heals_against_its_untrimmed_teacher(tmp_path):
    from ..vocab.factory import make_model as vocab_model
    from ..vocab.factory import make_tokenizer as vocab_tokenizer
    from ..vocab.factory import save_folder

    tokenizer = vocab_tokenizer("byte_level")
    dense = save_folder(vocab_model(tokenizer, tied=False), tokenizer, tmp_path / "dense")
    trimmed, student = tmp_path / "trimmed", tmp_path / "trimmed-24"
    vocab = hfprune.VocabSettings(langs=("en",), list_words=2000, verify_sentences=50, measure_speed=False)
    hfprune.trim_vocab_pretrained(str(dense), trimmed, vocab)
    hfprune.prune_pretrained(str(dense), student, method="magnitude", structure="2:4", vocab=vocab)
    assert (student / VOCAB_MAP_FILE).is_file()
    out = tmp_path / "healed"
    settings = HealSettings(calibration="en:1", tokens=SEQLEN * 4, lr=1e-3, **FAST)
    # the trimmed (unpruned) model reproduces the teacher's logits on the kept tokens: KD starts at about 0
    exact = heal_pretrained(trimmed, str(dense), tmp_path / "exact", settings.with_overrides(lr=1e-9))
    assert exact.record["alignment"]["kind"].startswith("trimmed") and exact.record["loss_start"]["kd"] < 1e-3
    heal_pretrained(student, str(dense), out, settings)
    assert (out / VOCAB_MAP_FILE).read_bytes() == (student / VOCAB_MAP_FILE).read_bytes()
    _assert_zeros_kept_and_rest_trained(student, out)
    healed, before = load_model(out).model, load_model(student).model
    assert healed.get_input_embeddings().weight.shape == before.get_input_embeddings().weight.shape


def test_pruning_an_already_trimmed_folder_keeps_its_vocab_map_so_it_heals_against_the_original(tmp_path):
    """trim-vocab, then prune the trimmed folder (two commands): the pruned folder still knows which original
    ids its tokens are, so the original dense model can teach it."""
    from ..vocab.factory import make_model as vocab_model
    from ..vocab.factory import make_tokenizer as vocab_tokenizer
    from ..vocab.factory import save_folder

    tokenizer = vocab_tokenizer("byte_level")
    dense = save_folder(vocab_model(tokenizer, tied=False), tokenizer, tmp_path / "dense")
    trimmed, student = tmp_path / "trimmed", tmp_path / "trimmed-then-pruned"
    vocab = hfprune.VocabSettings(langs=("en",), list_words=2000, verify_sentences=50, measure_speed=False)
    hfprune.trim_vocab_pretrained(str(dense), trimmed, vocab)
    hfprune.prune_pretrained(str(trimmed), student, method="magnitude", structure="2:4")

    assert (student / VOCAB_MAP_FILE).read_bytes() == (trimmed / VOCAB_MAP_FILE).read_bytes()
    carried = _record(student)["vocab"]
    assert carried["carried_from_base"] is True
    assert carried["tokenizer_sha256_before"] == _record(trimmed)["vocab"]["tokenizer_sha256_before"]
    settings = HealSettings(calibration="en:1", tokens=SEQLEN * 4, lr=1e-3, **FAST)
    healed = heal_pretrained(student, str(dense), tmp_path / "healed", settings)
    assert healed.record["alignment"]["kind"].startswith("trimmed")
    _assert_zeros_kept_and_rest_trained(student, tmp_path / "healed")


def test_the_card_of_a_healed_model_says_who_taught_it_on_what(models, tmp_path):

    out = tmp_path / "healed"
    settings = HealSettings(calibration="en:1,sw:1", tokens=SEQLEN * 8, lr=1e-3, calib_source=models["source"], **FAST)
    heal_pretrained(models["unstructured"], str(models["dense"]), out, settings, command=["hfprune", "heal", "x"])
    card = write_card(out).read_text()
    section = card.split("## Healing")[1].split("\n## ")[0]
    record = _record(out)["healing"]
    assert "distillation from **dense**" in section and "256 tokens of en, sw text" in section
    assert f"{record['steps']} steps of {SEQLEN}-token samples" in section and "full fine-tuning" in section
    assert f"| distillation (KL) | {record['loss_start']['kd']:.4f} | {record['loss_end']['kd']:.4f} |" in section
    assert "the embeddings and output head kept as pruning left them" in section
    assert "Every weight pruning set to zero is still zero" in section and "`hfprune heal x`" in section
    quality = record["quality"]
    assert set(quality["languages"]) == {"en", "sw"} and quality["not_measured"] == []
    # each figure is what the saved models score on the same held-out sentences, measured here independently
    from hfprune.data_sources import data_roots
    from hfprune.healing.quality import QUALITY_PLOT
    from hfprune.io import is_hfprune_plot
    from hfprune.models.quality import held_out_bits_per_byte

    roots = {root.name: root.path for root in data_roots()}
    sentences = {}
    for lang, name in quality["files"].items():  # published by data root and file name, never a machine path
        root, relative = name.split(":", 1)
        assert relative == f"flores/{lang}.devtest.txt" and root in roots, name
        lines = [line for line in (roots[root] / relative).read_text(encoding="utf-8").splitlines() if line.strip()]
        sentences[lang] = lines[:16]
    for role, folder in (("dense", models["dense"]), ("pruned", models["unstructured"]), ("healed", out)):
        loaded = load_model(folder)
        for lang, lines in sentences.items():
            expected = held_out_bits_per_byte(loaded.model, loaded.tokenizer, lines)["bits_per_byte"]
            assert quality["languages"][lang][role] == pytest.approx(expected, rel=1e-5), (role, lang)
    row = quality["languages"]["en"]
    assert f"| en | {row['dense']:.4f} | {row['pruned']:.4f} | {row['healed']:.4f} |" in section
    assert is_hfprune_plot(out / QUALITY_PLOT) and f"]({QUALITY_PLOT})" in section


def test_a_structured_student_keeps_its_shapes_and_its_zeros_are_counted_before_as_after(models, tmp_path):
    # GGUF-derived checkpoints hold exact zeros that no mask made; a structured student's pruning record says 0
    dense = load_model(models["dense"])
    with torch.no_grad():
        for layer in all_prunable_layers(dense.model):
            layer.module.weight[:, ::7] = 0
    zeroed = save_model_folder(dense.model, dense.tokenizer, tmp_path / "zeroed")
    student = tmp_path / "width"
    hfprune.prune_pretrained(
        str(zeroed),
        student,
        structure="width:0.25",
        calibration="en:2,sw:2",
        seqlen=SEQLEN,
        calib_source=models["source"],
    )
    assert _record(student)["achieved_sparsity"] == 0
    out = tmp_path / "healed"
    settings = HealSettings(calibration="en:1,sw:1", tokens=SEQLEN * 4, lr=1e-3, calib_source=models["source"], **FAST)
    record = heal_pretrained(student, str(models["dense"]), out, settings).record
    before, after = _prunable(student), _prunable(out)
    assert {name: w.shape for name, w in before.items()} == {name: w.shape for name, w in after.items()}
    assert record["zeros_before"]["zeros"] == sum(int((w == 0).sum()) for w in before.values()) > 0
    assert record["achieved_sparsity_before"] == record["zeros_before"]["sparsity"] == record["achieved_sparsity"]
