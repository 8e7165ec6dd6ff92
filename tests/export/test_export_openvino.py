"""``hfprune export --to openvino`` on the trained tiny model: real optimum-intel, NNCF and OpenVINO, no mocks.

What a user relies on: the pruned zeros survive int8 (read back from the IR itself), sparse decompression is on
exactly when the weights are sparse (and reaches the compiled model), a float export reproduces PyTorch's logits,
the KV cache is reused (the silent fault the version adjustments fix), int4 calibrates on the user's languages,
and a folder with an export inside stays one hfprune can replace and publish.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from hfprune.cli.main import main
from hfprune.constants import EXPORT_RECORD
from hfprune.errors import ExportUnavailableError, ExportVerificationError, OutputNotOursError
from hfprune.export import ExportSettings, export_openvino, load_openvino
from hfprune.export.runtime import RUNTIME_FILE, SPARSE_PROPERTY
from hfprune.export.signal_stack import current_signal_stack
from hfprune.export.verify import decode_steps, verify
from hfprune.io import check_output
from hfprune.models import load_model
from hfprune.models import openvino_compat as compat

FAST = {"verify_sentences": 4, "greedy_tokens": 8}


@pytest.fixture(scope="module")
def pruned(tiny_model_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "wanda50"
    argv = ["prune", str(tiny_model_dir), "--method", "wanda", "--sparsity", "0.5", "--calib", "en:4,sw:4"]
    assert main([*argv, "--no-speed", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def sparse_export(pruned: Path) -> tuple[Path, dict]:
    result = export_openvino(pruned, pruned / "openvino", ExportSettings(weights="int8", speed=False, **FAST))
    return result.out, result.record


def _ir_block_zeros(folder: Path) -> float:
    """Zeros of the blocks' int8 weight constants, read with openvino alone (not hfprune's reader)."""
    model = ov.Core().read_model(str(folder / "openvino_model.xml"))
    zeros = total = 0
    for op in model.get_ops():
        name = op.get_friendly_name()
        if op.get_type_name() == "Constant" and ".layers." in name and name.endswith("weight"):
            data = op.get_data()
            if data.ndim == 2:
                assert op.get_element_type() == ov.Type.i8  # symmetric int8: signed, no zero point
                zeros, total = zeros + int(np.sum(data == 0)), total + data.size
    return zeros / total


def test_sparse_int8_keeps_every_zero_and_turns_sparse_decompression_on(pruned, sparse_export):
    out, record = sparse_export
    pytorch_zeros = record["source"]["block_zero_share_pytorch"]
    assert pytorch_zeros == pytest.approx(0.5, abs=0.01)
    assert _ir_block_zeros(out) >= pytorch_zeros  # every pruned zero is still zero (rounding may add a few)
    assert record["quantization"]["sym"] is True
    runtime = json.loads((out / RUNTIME_FILE).read_text())
    assert runtime["ov_config"] == {SPARSE_PROPERTY: 0.5}
    assert record["ir"]["sparse_eligible"]["matrices"] == 14  # the 2 blocks' 7 projections, not the embeddings
    compiled = load_openvino(out)
    assert compiled.request.get_compiled_model().get_property(SPARSE_PROPERTY) == pytest.approx(0.5)
    assert record["sizes"]["ratio"] < 0.35  # int8 of fp32 weights, tokenizer files not counted
    for lang, row in record["verification"]["languages"].items():
        assert abs(row["bits_per_byte_change"]) < 0.02, lang
        assert row["argmax_agreement"] > 0.9, lang
    assert record["verification"]["decode_steps"][1:] == [1, 1, 1]
    assert set(record["verification"]["languages"]) == {"en", "sw"}  # the pruning's calibration languages
    assert (pruned / "model.safetensors").is_file() and (out / "openvino_tokenizer.xml").is_file()


def test_fp32_export_reproduces_pytorch_and_leaves_a_dense_model_without_sparse_decompression(tiny_model_dir, tmp_path):
    settings = ExportSettings(weights="fp32", verify_langs=("en", "de"), **FAST)
    record = export_openvino(tiny_model_dir, tmp_path / "fp32", settings).record
    for lang, row in record["verification"]["languages"].items():
        assert row["max_abs_logit_difference"] < 1e-3, lang
        assert record["verification"]["greedy"][lang]["identical"], lang
    assert record["runtime"]["ov_config"] == {"INFERENCE_PRECISION_HINT": "f32"}  # no sparse decompression
    assert record["runtime"]["compiled"]["INFERENCE_PRECISION_HINT"] == "f32"  # what actually ran
    assert record["speed"]["export"]["decode_tokens_per_s"] > 0 and record["speed"]["pytorch_fp32"]["rounds"]
    dense_int8 = export_openvino(tiny_model_dir, tmp_path / "int8", ExportSettings(speed=False, **FAST)).record
    assert dense_int8["quantization"]["sym"] is False  # a dense model keeps the more precise asymmetric int8
    assert dense_int8["runtime"]["ov_config"] == {} and dense_int8["ir"]["block_zero_share"] < 0.05


def test_the_decode_probe_catches_a_kv_cache_that_is_not_reused(sparse_export, pruned, monkeypatch):
    """Without hfprune's adjustment generate re-feeds the whole sequence: the text is right, the time quadratic."""
    from optimum.intel import OVModelForCausalLM

    out, _ = sparse_export
    compiled = load_openvino(out)
    tokenizer = load_model(pruned).tokenizer
    sentence = "The weather today is"
    assert decode_steps(compiled, tokenizer, sentence)[1:] == [1, 1, 1]
    original = OVModelForCausalLM.prepare_inputs_for_generation.__wrapped__
    monkeypatch.setattr(OVModelForCausalLM, "prepare_inputs_for_generation", original)
    steps = decode_steps(compiled, tokenizer, sentence)
    assert steps[1:] != [1, 1, 1] and steps[-1] > steps[0]
    torch_model = load_model(pruned).model.eval()
    with pytest.raises(ExportVerificationError, match="does not reuse its KV cache"):
        verify(torch_model, compiled, tokenizer, {"en": [sentence * 3]}, weights="int8", greedy_tokens=4)


def test_int4_is_calibrated_on_the_languages_asked_for_and_a_ctrl_c_after_it_is_still_a_keyboard_interrupt(
    pruned, tmp_path
):
    settings = ExportSettings.build(weights="int4", group_size=32, calib="en:3,sw:2", speed=False, **FAST)
    stack = current_signal_stack()
    record = export_openvino(pruned, tmp_path / "int4", settings).record
    # the libraries left their own alternate signal stack, unmapped: the next SIGINT was a SIGSEGV
    assert current_signal_stack() == stack
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    text = record["quantization"]["text"]
    assert text["data_aware"] is True and text["mix"] == "en:3,sw:2"
    assert {lang: row["documents"] for lang, row in text["languages"].items()} == {"en": 3, "sw": 2}
    assert record["quantization"]["bits"] == 4 and record["quantization"]["method"].endswith("AWQ")
    assert record["runtime"]["ov_config"] == {}  # OpenVINO packs sparse int8 only
    assert record["sizes"]["ir_bytes"] < 0.3 * record["sizes"]["safetensors_bytes"]
    assert all(np.isfinite(row["bits_per_byte_export"]) for row in record["verification"]["languages"].values())


def test_an_export_inside_the_model_folder_keeps_it_replaceable_and_a_users_file_is_never_taken(sparse_export, pruned):
    out, _ = sparse_export
    check_output(pruned, overwrite=True)  # prune --overwrite may replace the folder: the export is hfprune's
    note = out / "my-notes.txt"
    note.write_text("mine")
    try:
        with pytest.raises(OutputNotOursError, match="my-notes.txt"):
            check_output(pruned, overwrite=True)
    finally:
        note.unlink()


def test_an_untested_optimum_intel_is_refused_with_what_to_install(monkeypatch, pruned, tmp_path):
    versions = {**compat.installed_versions(), "optimum-intel": "2.3.0"}
    monkeypatch.setattr(compat, "installed_versions", lambda: versions)
    with pytest.raises(ExportUnavailableError, match="tested with optimum-intel 2.2.0.*--no-deps"):
        export_openvino(pruned, tmp_path / "x", ExportSettings())
    assert not (tmp_path / "x").exists()


def test_cli_export_json_is_clean_and_the_card_says_how_to_run_it(pruned, sparse_export, capsys):
    assert main(["card", str(pruned), "--overwrite"]) == 0
    card = (pruned / "README.md").read_text()
    assert "### Run it with OpenVINO (int8, in `openvino/`)" in card
    assert "Sparse decompression on" in card and "| en |" in card
    capsys.readouterr()
    out = pruned.parent / "cli-export"
    argv = ["export", str(pruned), "--to", "openvino", "--out", str(out), "--verify-sentences", "2", "--no-speed"]
    assert main([*argv, "--greedy-tokens", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # progress bars went to stderr
    assert printed["weights"] == "int8" and (out / EXPORT_RECORD).is_file()
    assert str(pruned.parent) not in json.dumps(printed["verification"]["held_out"])  # no machine paths
