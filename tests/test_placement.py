"""Models bigger than one device, on CPU: ``--device-map`` with a small ``--max-memory`` forces disk offload.

A model placed by accelerate must give the numbers it gives in one piece: the same pruned weights (``prune``),
the same perplexities and accuracies (``eval``), the same token scores and generations (the Space page).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfprune.cli.main import main
from hfprune.errors import DevicePlacementError
from hfprune.models import Placement, load_model
from hfprune.space.serve import load_app_module

from .model_factory import calibration_excerpt

pytestmark = pytest.mark.slow  # the tiny model

#: the tiny model holds 5.7 MB: with 3 MB of CPU its embeddings and head stay in memory and its blocks go to
#: disk; with 100 KB everything goes to disk
LIMITS = {"blocks on disk": "cpu=3MB", "all on disk": "cpu=100KB"}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def test_a_small_max_memory_really_offloads(tiny_model_dir, tmp_path):
    placement = Placement.parse("auto", LIMITS["blocks on disk"], tmp_path / "offload")
    model = load_model(tiny_model_dir, placement=placement).model
    where = set(model.hf_device_map.values())
    assert where == {"cpu", "disk"}, model.hf_device_map
    assert model.model.layers[0].mlp.down_proj.weight.device.type == "meta"  # waits on disk between forwards
    del model
    import gc

    gc.collect()
    assert list((tmp_path / "offload").iterdir()) == []  # the offload folder's scratch went with the model


@pytest.mark.parametrize(
    "limit,method", [("blocks on disk", "sparsegpt"), ("all on disk", "sparsegpt"), ("blocks on disk", "mwanda")]
)
def test_prune_with_offloaded_blocks_writes_the_weights_of_the_model_in_memory(tiny_model_dir, tmp_path, limit, method):
    common = [
        "prune",
        str(tiny_model_dir),
        "--method",
        method,
        "--sparsity",
        "0.5",
        "--calib",
        "en:3,sw:2",
        "--seqlen",
        "64",
        "--calib-source",
        str(calibration_excerpt(tmp_path / "calib")),
        "--batch-size",
        "2",
        "--quiet",
    ]
    assert main([*common, "--out", str(tmp_path / "whole")]) == 0
    placed = [*common, "--device-map", "auto", "--max-memory", LIMITS[limit], "--offload-folder", str(tmp_path / "off")]
    assert main([*placed, "--out", str(tmp_path / "placed")]) == 0
    whole, placed_weights = _weights(tmp_path / "whole"), _weights(tmp_path / "placed")
    assert sorted(whole) == sorted(placed_weights)  # a tied head is written once, as in memory
    assert [name for name in whole if not torch.equal(whole[name], placed_weights[name])] == []
    assert any((w == 0).any() for w in whole.values())  # it did prune
    record = json.loads((tmp_path / "placed" / "hfprune.json").read_text())
    assert record["placement"] == {"device_map": "auto", "max_memory": {"cpu": LIMITS[limit].split("=")[1]}}
    assert not any((tmp_path / "off").iterdir())  # scratch removed


@pytest.mark.parametrize("limit", list(LIMITS))
def test_eval_with_offloaded_weights_scores_the_same(tiny_model_dir, tmp_path, limit, capsys):
    common = [
        "eval",
        str(tiny_model_dir),
        "--langs",
        "en,sw",
        "--tasks",
        "ppl,xcopa",
        "--limit",
        "8",
        "--context-length",
        "64",
        "--batch-size",
        "4",
        "--no-cache",
        "--json",
    ]
    assert main([*common, "--out", str(tmp_path / "whole.json")]) == 0
    assert (
        main([*common, "--device-map", "sequential", "--max-memory", LIMITS[limit], "--out", str(tmp_path / "p.json")])
        == 0
    )
    whole = json.loads((tmp_path / "whole.json").read_text())
    placed = json.loads((tmp_path / "p.json").read_text())
    assert len(whole["results"]) == 4
    assert [r["metrics"] for r in placed["results"]] == [r["metrics"] for r in whole["results"]]
    assert placed["model"] == whole["model"]  # same hash, parameter count and sparsity: the same model


@pytest.mark.parametrize("limit", list(LIMITS))
def test_the_space_page_scores_and_generates_the_same_from_offloaded_weights(tiny_model_dir, limit):
    app = load_app_module()
    whole = app.load_model(str(tiny_model_dir), torch.device("cpu"))
    placed = app.load_model(str(tiny_model_dir), torch.device("cpu"), app.Placement.parse("auto", LIMITS[limit]))
    assert "disk" in set(placed.model.hf_device_map.values())
    ids = whole.tokenizer("Habari ya asubuhi, rafiki yangu. Good morning, my friend.")["input_ids"]
    assert app.token_scores(placed, ids) == app.token_scores(whole, ids)
    settings = app.check_settings(12, 0.0, 1.0, 0)
    texts = []
    for loaded in (whole, placed):
        stream = app.TokenStream(loaded, ids, settings)
        while not stream.done:
            stream.step()
        texts.append(stream.ids)
    assert texts[0] == texts[1] and len(texts[0]) > 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--device-map", "auto", "--max-memory", "cpu:3GB"], "not DEVICE=SIZE"),
        (["--device-map", "auto", "--max-memory", "cpu=lots"], "not a size"),
        (["--max-memory", "cpu=3GB"], "need --device-map"),
        (["--device-map", "auto", "--stream"], "--stream"),
    ],
)
def test_bad_placements_are_one_error_line(tiny_model_dir, tmp_path, capsys, argv, message):
    code = main(["prune", str(tiny_model_dir), "--out", str(tmp_path / "out"), "--quiet", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_sweep_refuses_a_device_map(tiny_model_dir, tmp_path, capsys):
    argv = ["sweep", str(tiny_model_dir), "--methods", "wanda", "--calib", "en:2", "--eval-langs", "en"]
    assert main([*argv, "--out", str(tmp_path / "s"), "--device-map", "auto"]) == 2
    assert "--device-map" in capsys.readouterr().err


def test_placement_parsing():
    assert Placement.parse(None) is None
    parsed = Placement.parse("balanced", "0=20GiB, 1=20GiB,cpu=64GiB", "/tmp/x")
    assert parsed is not None and parsed.max_memory == {0: "20GiB", 1: "20GiB", "cpu": "64GiB"}
    with pytest.raises(DevicePlacementError, match="unknown --device-map"):
        Placement.parse("everywhere")


def test_space_serve_hands_the_placement_to_the_page_as_its_variables_would():
    from hfprune.space.serve import _page_placement

    placement = Placement.parse("balanced", "0=20GiB,cpu=3MB", "/tmp/offload")
    page = _page_placement(placement)
    assert page == {"device_map": "balanced", "max_memory": "0=20GiB,cpu=3MB", "offload_folder": "/tmp/offload"}
    parsed = load_app_module().Placement.parse(**page)
    assert dict(parsed.max_memory) == placement.max_memory and parsed.device_map == "balanced"
    assert _page_placement(None) == {}
