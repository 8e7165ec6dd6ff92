"""One load object (:class:`hfprune.ModelSource`) for every job, and the compute device resolved once per call."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hfprune
from hfprune.api import settings as settings_module
from hfprune.calibration import CalibrationSet
from hfprune.errors import InvalidDeviceError

from .model_factory import make_model, make_tokenizer, save_model_folder


def _calibration() -> CalibrationSet:
    ids = torch.randint(3, 200, (4, 16), generator=torch.Generator().manual_seed(0))
    return CalibrationSet.from_tensors(ids, ["en", "en", "sw", "sw"])


@pytest.fixture
def base(tmp_path: Path) -> Path:
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    return save_model_folder(make_model("llama", seed=3), tokenizer, tmp_path / "base")


def test_a_source_never_shows_its_token_and_knows_a_local_folder(base: Path):
    source = hfprune.ModelSource(str(base), token="hf_secretsecretsecret", dtype="float32")
    assert "hf_secret" not in repr(source)
    assert source.local_folder == base.resolve()
    assert hfprune.ModelSource("owner/name").local_folder is None
    assert hfprune.ModelSource.of(source) is source and hfprune.ModelSource.of(base).model == str(base)
    assert source.at("abc123").revision == "abc123" and source.revision is None
    loaded = source.load()
    assert next(loaded.model.parameters()).dtype == torch.float32 and loaded.tokenizer is not None


def test_loading_keywords_on_prune_pretrained_point_to_the_source(base: Path, tmp_path: Path):
    with pytest.raises(TypeError, match=r"ModelSource\(model, revision=\.\.\.\)"):
        hfprune.prune_pretrained(str(base), tmp_path / "out", method="magnitude", revision="main")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("structure", ["unstructured", "width:0.25"])
def test_prune_pretrained_resolves_the_device_once(base: Path, tmp_path: Path, monkeypatch, structure: str):
    calls: list[object] = []
    real = settings_module.resolve_device

    def counting(device):
        calls.append(device)
        return real(device)

    monkeypatch.setattr(settings_module, "resolve_device", counting)
    method = {"method": "wanda", "sparsity": 0.5} if structure == "unstructured" else {}
    result = hfprune.prune_pretrained(
        hfprune.ModelSource(str(base), dtype="float32"),
        tmp_path / "out",
        structure=structure,
        **method,
        calibration=_calibration(),
        device="cpu",
    )
    assert calls == ["cpu"]
    assert result.device == "cpu" and (tmp_path / "out" / "model.safetensors").is_file()


def test_a_device_this_machine_lacks_is_refused_before_loading(base: Path, tmp_path: Path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the refusal is for one that has none")
    loads: list[object] = []
    monkeypatch.setattr(hfprune.ModelSource, "load", lambda self, **_: loads.append(self))
    with pytest.raises(InvalidDeviceError, match="no CUDA GPU"):
        hfprune.prune_pretrained(str(base), tmp_path / "out", method="magnitude", device="cuda")
    assert loads == [] and not (tmp_path / "out").exists()
