"""``--heal`` on ``prune`` (and ``run``): the pruned model is healed from the dense base before it is saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hfprune.card import write_card
from hfprune.cli import main
from hfprune.constants import METADATA_FILE
from hfprune.models import all_prunable_layers, load_model

from .factory import SEQLEN, dense_folder, small_source

BASE = ["--calib", "en:4,sw:4", "--seqlen", str(SEQLEN), "--method", "wanda", "--sparsity", "0.5", "--quiet"]


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Path:
    return dense_folder(tmp_path_factory.mktemp("dense") / "dense")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return small_source(tmp_path_factory.mktemp("text"), lines=200)


def _zeros(folder: Path) -> dict[str, torch.Tensor]:
    model = load_model(folder).model
    return {layer.name: layer.module.weight.detach() == 0 for layer in all_prunable_layers(model)}


def test_prune_heal_keeps_the_mask_of_the_same_prune_and_records_the_healing(dense, source, tmp_path):
    plain, healed = tmp_path / "plain", tmp_path / "healed"
    common = [str(dense), *BASE, "--calib-source", str(source)]
    assert main(["prune", *common, "--out", str(plain)]) == 0
    heal = ["--heal", "--heal-tokens", str(SEQLEN * 8), "--heal-lr", "1e-3", "--batch-size", "2"]
    assert main(["prune", *common, *heal, "--out", str(healed)]) == 0
    before, after = _zeros(plain), _zeros(healed)
    assert before.keys() == after.keys()
    for name, zeros in before.items():  # the same mask as the plain prune, kept exactly through healing
        assert torch.equal(zeros, after[name]), name
    plain_weights = load_model(plain).model.state_dict()
    healed_weights = load_model(healed).model.state_dict()
    assert any(not torch.equal(plain_weights[k], healed_weights[k]) for k in plain_weights)  # it trained
    record = json.loads((healed / METADATA_FILE).read_text())
    healing = record["healing"]
    assert healing["teacher"]["id"] == "dense" and healing["tokens_seen"] == SEQLEN * 8
    assert healing["languages"] == ["en", "sw"] and healing["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    mask = set(record["calibration"]["sample_hashes"])
    assert mask and not mask & set(healing["data"]["sample_hashes"])
    assert "## Healing" in write_card(healed).read_text()


def test_heal_options_without_heal_and_heal_with_stream_are_refused(dense, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["prune", str(dense), *BASE, "--heal-tokens", "64", "--out", str(out)]) == 2
    assert "--heal-tokens only apply with --heal" in capsys.readouterr().err
    assert main(["prune", str(dense), *BASE, "--heal", "--stream", "--out", str(out)]) == 2
    assert "--stream never holds" in capsys.readouterr().err
    assert not out.exists()


def test_run_heal_heals_and_a_rerun_with_other_healing_prunes_again(dense, source, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["run", str(dense), *BASE[:-1], "--calib-source", str(source), "--out", str(out), "--json"]
    heal = ["--heal", "--heal-tokens", str(SEQLEN * 4), "--batch-size", "2"]
    assert main([*common, *heal]) == 0
    first = json.loads(capsys.readouterr().out)
    assert "prune" in first["ran"] and json.loads((out / METADATA_FILE).read_text())["healing"]["tokens_seen"] == 128
    assert "## Healing" in (out / "README.md").read_text()
    assert main([*common, *heal]) == 0  # the same job: nothing to do
    assert "prune" in json.loads(capsys.readouterr().out)["skipped"]
    assert main([*common, "--heal", "--heal-tokens", str(SEQLEN * 8), "--batch-size", "2"]) == 2
    assert "another job" in capsys.readouterr().err  # other healing is another job: kept unless --overwrite
    assert main([*common, "--heal", "--heal-tokens", str(SEQLEN * 8), "--batch-size", "2", "--overwrite"]) == 0
    assert "prune" in json.loads(capsys.readouterr().out)["ran"]
    assert json.loads((out / METADATA_FILE).read_text())["healing"]["tokens_seen"] == 256
