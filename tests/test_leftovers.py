"""A run killed outright (SIGKILL) leaves a temporary folder; the next run recognises a dead process's leftover
and removes it, restores an output that was being swapped out, and never touches anything else."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfprune.cli.main import main
from hfprune.constants import METADATA_FILE, PARTIAL_MARKER, SWAP_MARKER
from hfprune.io import recover_leftovers

from .model_factory import make_model, make_tokenizer, save_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from .data_dirs import data_dir

    data = data_dir()
    assert data is not None
    texts = (data / "calib" / "ntrex" / "en.txt").read_text(encoding="utf-8").splitlines()[:300]
    return save_model_folder(make_model("llama"), make_tokenizer(texts), tmp_path_factory.mktemp("m") / "model")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sigkill_mid_prune_leaves_a_leftover_that_the_next_run_removes(model_dir, tmp_path):
    out = tmp_path / "pruned"
    command = [
        sys.executable,
        "-m",
        "hfprune",
        "prune",
        str(model_dir),
        "--method",
        "sparsegpt",
        "--calib",
        "en:16",
        "--seqlen",
        "128",
        "--batch-size",
        "1",
        "--stream",
        "--out",
        str(out),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".pruned.tmp-{process.pid}-*/{PARTIAL_MARKER}")):
        assert process.poll() is None, "the prune finished before it could be killed"
        assert time.monotonic() < deadline, "no temporary folder appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    leftovers = list(tmp_path.glob(".pruned.tmp-*"))
    assert len(leftovers) == 1 and not out.exists()
    mine = tmp_path / f".pruned.tmp-{process.pid}-notours"  # same name pattern, no marker: not hfprune's
    mine.mkdir()

    assert main(["prune", str(model_dir), "--method", "magnitude", "--out", str(out), "--quiet"]) == 0

    assert not leftovers[0].exists() and mine.is_dir()
    assert (out / METADATA_FILE).is_file() and not (out / PARTIAL_MARKER).exists()


def _swap_leftover(folder: Path, pid: int) -> None:
    folder.mkdir()
    (folder / METADATA_FILE).write_text(json.dumps({"method": "wanda"}))
    record = {"name": folder.name, "pid": pid, "host": socket.gethostname()}
    (folder / SWAP_MARKER).write_text(json.dumps(record))


def test_an_output_being_swapped_out_when_killed_is_restored(tmp_path):
    out = tmp_path / "pruned"
    old = tmp_path / ".pruned.old-123-a1b2c3"
    _swap_leftover(old, _dead_pid())
    assert recover_leftovers(out) == [old]
    assert json.loads((out / METADATA_FILE).read_text()) == {"method": "wanda"} and not old.exists()
    assert not (out / SWAP_MARKER).exists()


def test_a_swapped_out_output_is_removed_once_the_new_one_is_in_place(tmp_path):
    out = tmp_path / "pruned"
    out.mkdir()
    (out / METADATA_FILE).write_text("{}")
    old = tmp_path / ".pruned.old-123-a1b2c3"
    _swap_leftover(old, _dead_pid())
    assert recover_leftovers(out) == [old] and not old.exists() and (out / METADATA_FILE).read_text() == "{}"


@pytest.mark.parametrize(
    "name, marker",
    [
        (".pruned.old-2024", None),  # a user's copy named like a leftover (cp -r pruned .pruned.old-2024)
        (".pruned.old-2024", "other-name"),  # a copy of a real leftover under another name
        (".pruned.tmp-2024-x", None),
        (".pruned.tmp-2024-x", "other-name"),
    ],
)
def test_what_hfprune_cannot_prove_it_wrote_is_never_touched(tmp_path, name, marker):
    out = tmp_path / "pruned"
    copy = tmp_path / name
    copy.mkdir()
    (copy / METADATA_FILE).write_text("{}")
    (copy / "notes.txt").write_text("mine")
    if marker:
        record = {"name": marker, "pid": _dead_pid(), "host": socket.gethostname()}
        (copy / (SWAP_MARKER if ".old-" in name else PARTIAL_MARKER)).write_text(json.dumps(record))
    assert recover_leftovers(out) == []
    assert (copy / "notes.txt").read_text() == "mine" and not out.exists()


def test_a_user_copy_beside_out_survives_a_refused_prune(model_dir, tmp_path, monkeypatch, capsys):
    """The reported case: the copy was deleted at start-up, before the check that then refused the run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / METADATA_FILE).write_text("{}")
    copy = tmp_path / ".zz.old-2024"
    copy.mkdir()
    (copy / METADATA_FILE).write_text("{}")
    assert main(["prune", str(model_dir), "--method", "magnitude", "--out", "zz", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (copy / METADATA_FILE).is_file()


def test_leftovers_of_live_processes_are_left_alone(tmp_path):
    live = tmp_path / f".pruned.tmp-{os.getpid()}-abc"
    live.mkdir()
    record = {"name": live.name, "pid": os.getpid(), "host": socket.gethostname()}
    (live / PARTIAL_MARKER).write_text(json.dumps(record))
    assert recover_leftovers(tmp_path / "pruned") == [] and live.is_dir()
