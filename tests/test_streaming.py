"""``--stream``: blocks read from safetensors one at a time and written out pruned give the in-memory result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import hfprune
from hfprune.calibration import CalibrationSet
from hfprune.cli import main as cli_main
from hfprune.errors import CorruptCheckpointError, StreamingUnsupportedError
from hfprune.models import streaming

from .model_factory import ARCHITECTURES, make_model

DECODER_ONLY = [arch for arch in ARCHITECTURES if arch != "mt5"]


def _calibration() -> CalibrationSet:
    ids = torch.randint(3, 320, (6, 24), generator=torch.Generator().manual_seed(0))
    return CalibrationSet.from_tensors(ids, ["en", "en", "sw", "sw", "de", "de"])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


@pytest.mark.parametrize("arch", DECODER_ONLY)
def test_streamed_prune_writes_what_the_in_memory_prune_writes(arch: str, tmp_path: Path):
    source = tmp_path / "dense"
    make_model(arch).save_pretrained(source)
    runs = {}
    for stream in (False, True):
        out = tmp_path / ("streamed" if stream else "in-memory")
        hfprune.prune_pretrained(
            str(source), out, method="sparsegpt", sparsity=0.5, calibration=_calibration(), stream=stream
        )
        runs[stream] = out
    in_memory, streamed = _weights(runs[False]), _weights(runs[True])
    assert in_memory.keys() == streamed.keys()
    for name, tensor in in_memory.items():
        assert torch.equal(tensor, streamed[name]), name
    blocks = make_model(arch).config.num_hidden_layers
    assert len(list(runs[True].glob("model-*-of-*.safetensors"))) == blocks + 1  # one shard per block, then the rest
    index = json.loads((runs[True] / streaming.WEIGHTS_INDEX).read_text())
    assert set(index["weight_map"].values()) == {p.name for p in runs[True].glob("model-*.safetensors")}
    meta = {stream: json.loads((out / "hfprune.json").read_text()) for stream, out in runs.items()}
    assert meta[True]["streamed"] is True
    assert meta[True]["layers"] == meta[False]["layers"]  # same layers, same achieved sparsity
    assert meta[True]["calibration"]["sample_hashes"] == meta[False]["calibration"]["sample_hashes"]


def test_at_most_one_block_is_in_memory_even_with_a_dense_profile_pass(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
):
    """M-Wanda's default runs a dense statistics pass before pruning: that pass streams blocks too."""
    loaded: set[int] = set()
    most = [0]
    original_load, original_release = streaming.StreamedBlocks.load, streaming.StreamedBlocks.release

    def load(self, block):
        original_load(self, block)
        loaded.add(id(block))
        most[0] = max(most[0], len(loaded))

    def release(self, block, pruned):
        original_release(self, block, pruned)
        loaded.discard(id(block))
        assert all(p.is_meta for p in block.parameters())

    monkeypatch.setattr(streaming.StreamedBlocks, "load", load)
    monkeypatch.setattr(streaming.StreamedBlocks, "release", release)
    kwargs = dict(method="mwanda", sparsity=0.5, calibration="en:2,sw:2,zh:2", seqlen=64)
    hfprune.prune_pretrained(str(tiny_model_dir), tmp_path / "streamed", stream=True, **kwargs)
    monkeypatch.undo()
    hfprune.prune_pretrained(str(tiny_model_dir), tmp_path / "in-memory", **kwargs)
    assert most[0] == 1 and not loaded
    streamed, in_memory = _weights(tmp_path / "streamed"), _weights(tmp_path / "in-memory")
    assert all(torch.equal(in_memory[name], streamed[name]) for name in in_memory)
    meta = json.loads((tmp_path / "streamed" / "hfprune.json").read_text())
    assert meta["sparsity_profile"]["profile"] == "crosslingual"  # the dense pass did run, streamed


def test_cli_stream_flag_prunes_the_trained_model(tiny_model_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "pruned"
    code = cli_main(
        [
            "prune",
            str(tiny_model_dir),
            "--stream",
            "--calib",
            "en:2,de:2",
            "--seqlen",
            "64",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model(input_ids=torch.tensor([[1, 5, 9]])).logits.isfinite().all()


def test_gradient_methods_and_encoder_decoders_are_refused_before_anything_is_written(tmp_path: Path):
    llama, mt5 = tmp_path / "llama", tmp_path / "mt5"
    make_model("llama").save_pretrained(llama)
    make_model("mt5").save_pretrained(mt5)
    with pytest.raises(StreamingUnsupportedError, match="snip.*without --stream"):
        hfprune.prune_pretrained(str(llama), tmp_path / "a", method="snip", calibration=_calibration(), stream=True)
    with pytest.raises(StreamingUnsupportedError, match="encoder-decoder"):
        hfprune.prune_pretrained(str(mt5), tmp_path / "b", calibration=_calibration(), stream=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_checkpoint_with_foreign_tensor_names_is_refused(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    source = tmp_path / "renamed"
    make_model("llama").save_pretrained(source)
    weights = source / "model.safetensors"
    save_file({k.replace("model.layers.", "model.blocks."): v for k, v in load_file(weights).items()}, weights)
    with pytest.raises(StreamingUnsupportedError, match="model.layers.0.*without --stream"):
        hfprune.prune_pretrained(str(source), tmp_path / "out", calibration=_calibration(), stream=True)
    assert not (tmp_path / "out").exists()


def test_checkpoint_reader_reads_every_dtype_as_safetensors_does_and_refuses_a_truncated_file(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    tensors = {
        "f32": torch.randn(3, 5),
        "bf16": torch.randn(4, 2).to(torch.bfloat16),
        "f16": torch.randn(7).to(torch.float16),
        "i64": torch.arange(6).view(2, 3),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), {"format": "pt"})
    reader = streaming.CheckpointReader(tmp_path)
    reference = load_file(path)
    for name, tensor in reference.items():
        got = reader.get(name)
        assert got.dtype == tensor.dtype and got.shape == tensor.shape and torch.equal(got, tensor), name
    assert "f32" in reader and "missing" not in reader
    path.write_bytes(path.read_bytes()[:-8])  # the last tensor loses its tail
    with pytest.raises(CorruptCheckpointError, match="spans bytes .* needs"):
        streaming.CheckpointReader(tmp_path)


def _with_header(path: Path, header: dict | bytes, data: bytes = b"\0" * 16) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


@pytest.mark.parametrize(
    "header,message",
    [
        (b"\xff" * 8, "header claims"),  # a header size far beyond the file: never allocated
        (b"{not json", "not JSON"),
        ({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}}, "malformed shape"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, "needs 16"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            "overlap",
        ),
    ],
)
def test_a_malformed_safetensors_header_is_refused_before_anything_is_allocated(tmp_path: Path, header, message):
    if isinstance(header, bytes) and header.startswith(b"\xff"):
        (tmp_path / "model.safetensors").write_bytes(header + b"{}")
    else:
        _with_header(tmp_path / "model.safetensors", header)
    with pytest.raises(CorruptCheckpointError, match=message):
        streaming.CheckpointReader(tmp_path)
