"""``hfprune heal`` on the command line: a run that works, and every refusal as one ``error:`` line, exit 2,
nothing written (the house pattern of tests/test_bad_input.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfprune.cli.main import main
from hfprune.constants import METADATA_FILE

from ..model_factory import make_model, make_tokenizer, save_model_folder
from .factory import SEQLEN, dense_folder, pruned_folder, small_source, texts


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("heal-cli")
    dense = dense_folder(root / "dense")
    other = save_model_folder(make_model("llama"), make_tokenizer(texts(("en", "de")), vocab_size=300), root / "other")
    return {
        "source": small_source(root / "text"),
        "dense": dense,
        "other": other,
        "pruned": pruned_folder(dense, root / "pruned", structure="2:4"),
        "plain": save_model_folder(make_model("llama"), make_tokenizer(texts()), root / "plain"),
    }


def _argv(
    folders: dict[str, Path], out: Path, *extra: str, student: str = "pruned", teacher: str = "dense"
) -> list[str]:
    return [
        "heal",
        str(folders[student]),
        "--teacher",
        str(folders[teacher]),
        "--calib",
        "en:1,sw:1",
        "--calib-source",
        str(folders["source"]),
        "--tokens",
        str(SEQLEN * 4),
        "--seqlen",
        str(SEQLEN),
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_heal_writes_the_healed_model_and_prints_its_record(folders, tmp_path, capsys):
    out = tmp_path / "healed"
    assert main(_argv(folders, out, "--json", "--lr", "1e-3", "--kd-weight", "0.7", "--grad-accum", "2")) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads((out / METADATA_FILE).read_text())
    assert printed["healing"]["steps"] == record["healing"]["steps"] == 1  # 4 samples, batch 2, 2 forwards a step
    assert record["healing"]["kd_weight"] == 0.7 and record["healing"]["command"][0] == "hfprune"
    assert record["method"] == "magnitude" and record["structure"] == "2:4"  # the student's record, kept
    assert not any(str(tmp_path) in arg for arg in record["healing"]["command"])  # portable paths only


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = {
    "tokens 0": (dict(extra=("--tokens", "0")), "--tokens must be a positive number of tokens, got 0"),
    "tokens negative": (dict(extra=("--tokens", "-3")), "--tokens must be a positive"),
    "unknown language": (dict(extra=("--calib", "xx:1")), "'xx' is not a language code"),
    "language without text": (dict(extra=("--calib", "de:1")), "no text for 'de'"),
    "teacher with another tokenizer": (dict(teacher="other"), "the teacher's tokenizer"),
    "student without hfprune.json": (dict(student="plain"), "healing starts from a model hfprune pruned"),
    "existing --out": (dict(existing=True), "already exists; pass --overwrite"),
    "resume without a checkpoint": (dict(extra=("--resume",)), "there is no checkpoint to resume"),
    "teacher on a GPU this machine lacks": (
        dict(extra=("--teacher-device", "cuda:0")),
        "--teacher-device cuda:0: this machine has no CUDA GPU",
    ),
    "teacher on an unknown device": (dict(extra=("--teacher-device", "tpu")), "unknown device 'tpu'"),
    "lora with trained embeddings": (
        dict(extra=("--heal-mode", "lora", "--train-embeddings")),
        "--train-embeddings trains whole embedding weights",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_heal_is_one_error_line_exit_2_and_nothing_written(folders, name, tmp_path, capsys):
    spec, message = CASES[name]
    out = tmp_path / "out"
    if spec.get("existing"):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    argv = _argv(folders, out, student=spec.get("student", "pruned"), teacher=spec.get("teacher", "dense"))
    argv += list(spec.get("extra", ()))
    before, models_before = _listing(tmp_path), {k: _listing(v) for k, v in folders.items()}
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2, captured.err
    assert len(errors) == 1 and message in errors[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert _listing(tmp_path) == before and {k: _listing(v) for k, v in folders.items()} == models_before
