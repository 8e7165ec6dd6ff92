"""What trains and where it lives: the embeddings stay as pruning left them unless asked, and the memory check
counts each device's share, so a teacher that does not fit beside the student is refused with the way out."""

from __future__ import annotations

import pytest
import torch

from hfprune.errors import TeacherDoesNotFitError
from hfprune.healing import HealSettings, heal
from hfprune.healing.memory import check_fits, estimate
from hfprune.models import load_model

from .factory import SEQLEN, dense_folder, pruned_folder, small_source


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    source = small_source(root / "text")
    dense = dense_folder(root / "dense")
    return dense, pruned_folder(dense, root / "p50", source=source), source


def _heal(pair, **overrides):
    dense, student_folder, source = pair
    student, teacher = load_model(student_folder), load_model(dense)
    before = {
        "embed": student.model.get_input_embeddings().weight.detach().clone(),
        "head": student.model.get_output_embeddings().weight.detach().clone(),
        "block": student.model.model.layers[0].mlp.up_proj.weight.detach().clone(),
    }
    settings = HealSettings(
        calibration="en:1,sw:1",
        tokens=SEQLEN * 4,
        lr=1e-3,
        calib_source=source,
        seqlen=SEQLEN,
        batch_size=2,
        device="cpu",
        quality_sentences=0,
        **overrides,
    )
    result = heal(student.model, teacher.model, student.tokenizer, settings, teacher_tokenizer=teacher.tokenizer)
    return before, result


def test_embeddings_stay_as_pruning_left_them_unless_asked(pair):
    before, result = _heal(pair)
    model = result.model
    assert torch.equal(model.get_input_embeddings().weight, before["embed"])
    assert torch.equal(model.get_output_embeddings().weight, before["head"])
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, before["block"]), "the blocks did not train"
    record = result.record
    frozen = before["embed"].numel() + before["head"].numel()  # the tiny llama's head is not tied
    assert record["embeddings"] == "frozen" and record["frozen_parameters"] == frozen
    assert record["memory_estimate"]["trained_parameters"] == record["memory_estimate"]["student_parameters"] - frozen
    assert record["settings"]["train_embeddings"] is False
    assert all(p.requires_grad for p in model.parameters()), "the returned model must train like any other"

    before, result = _heal(pair, train_embeddings=True)
    assert not torch.equal(result.model.get_input_embeddings().weight, before["embed"])
    assert not torch.equal(result.model.get_output_embeddings().weight, before["head"])
    assert result.record["embeddings"] == "trained" and result.record["frozen_parameters"] == 0
    assert result.record["settings"]["train_embeddings"] is True


def test_the_teacher_device_is_recorded_and_the_result_does_not_depend_on_naming_it(pair):
    _, default = _heal(pair)
    _, named = _heal(pair, teacher_device="cpu")
    assert named.record["teacher_device"] == "cpu" == default.record["teacher_device"]
    for (name, a), b in zip(default.model.state_dict().items(), named.model.state_dict().values()):
        assert torch.equal(a, b), name


def _models():
    student = torch.nn.Sequential(torch.nn.Embedding(1000, 64), torch.nn.Linear(64, 64))  # 64,000 + 4,160
    student[0].weight.requires_grad_(False)
    teacher = torch.nn.Linear(1024, 1024)  # 1,049,600 parameters, 4 MiB
    return student, teacher


def _free(gib: float):
    """The GPU's free memory, as ``torch.cuda.mem_get_info`` would report it (this machine has no GPU)."""
    return lambda device: int(gib * 2**30)


def test_the_estimate_counts_only_what_trains_and_puts_each_part_on_its_device():
    student, teacher = _models()
    gpu, cpu = torch.device("cuda:0"), torch.device("cpu")
    shared = estimate(student, teacher, device=gpu, teacher_device=gpu)
    assert shared["trained_parameters"] == 4160 and shared["teacher_parameters"] == 1_049_600
    assert shared["gradients_and_adamw_gib"] == pytest.approx(4160 * (4 + 8) / 2**30)
    assert shared["per_device_gib"] == {"cuda:0": pytest.approx(shared["total_gib"])}
    apart = estimate(student, teacher, device=gpu, teacher_device=cpu)
    assert apart["per_device_gib"]["cuda:0"] == pytest.approx(shared["total_gib"] - shared["teacher_weights_gib"])
    assert apart["per_device_gib"]["cpu"] == pytest.approx(shared["teacher_weights_gib"])


def test_a_teacher_that_does_not_fit_beside_the_student_is_refused_with_the_way_out():
    student, teacher = _models()
    gpu, cpu = torch.device("cuda:0"), torch.device("cpu")
    room = 0.0045  # GiB: the student's part (~0.25 MiB) fits, not with the 4 MiB teacher beside it
    with pytest.raises(TeacherDoesNotFitError, match=r"on cuda:0 .*teacher 0\.0\).* --teacher-device cpu"):
        check_fits(estimate(student, teacher, device=gpu, teacher_device=gpu), _free(0.003))
    fits = check_fits(estimate(student, teacher, device=gpu, teacher_device=cpu), _free(room))
    assert fits["device_free_gib"] == {"cuda:0": pytest.approx(room)}
    with pytest.raises(TeacherDoesNotFitError, match=r"on cuda:1 \(teacher"):
        check_fits(estimate(student, teacher, device=cpu, teacher_device=torch.device("cuda:1")), _free(0.001))
    assert check_fits(estimate(student, teacher, device=cpu, teacher_device=cpu))["device_free_gib"] is None


def test_the_hidden_state_term_is_scale_free_and_pulls_the_student_towards_the_teacher(pair):
    from types import SimpleNamespace

    from hfprune.errors import HealingSettingsError
    from hfprune.healing.core import _check_hidden_widths
    from hfprune.healing.loss import hidden_loss

    a, b = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    assert hidden_loss(a, a) == 0 and hidden_loss(3 * a, 3 * b) == pytest.approx(float(hidden_loss(a, b)), rel=1e-5)

    dense, student_folder, source = pair
    teacher = load_model(dense)
    _, plain = _heal(pair)
    _, hidden = _heal(pair, hidden_weight=2.0)
    assert "hidden" not in plain.record["loss_end"] and hidden.record["hidden_weight"] == 2.0
    assert hidden.record["loss_start"]["hidden"] > 0 and hidden.record["settings"]["hidden_weight"] == 2.0
    ids = teacher.tokenizer("Habari ya asubuhi, the weather in Berlin is fine today", return_tensors="pt").input_ids

    def distance(model) -> float:
        with torch.no_grad():
            mine = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
            theirs = teacher.model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        return float(hidden_loss(mine, theirs))

    assert distance(hidden.model) < distance(plain.model) < distance(load_model(student_folder).model)

    narrow, wide = (SimpleNamespace(config=SimpleNamespace(hidden_size=w)) for w in (64, 128))
    with pytest.raises(HealingSettingsError, match="student's are 64 wide and the teacher's 128"):
        _check_hidden_widths(narrow, wide, HealSettings(hidden_weight=1.0))
    _check_hidden_widths(narrow, wide, HealSettings())  # off: no match needed
