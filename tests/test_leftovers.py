"""A run killed outright (SIGKILL) leaves a temporary folder; the next run recognises a dead process's leftover
and removes it, restores an output that was being swapped out, and never touches anything else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfprune.cli.main import main
from hfprune.constants import METADATA_FILE, PARTIAL_MARKER
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
    command = [sys.executable, "-m", "hfprune", "prune", str(model_dir), "--method", "sparsegpt", "--calib",
               "en:16", "--seqlen", "128", "--batch-size", "1", "--stream", "--out", str(out), "--quiet"]  # fmt: skip
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


def test_an_output_being_swapped_out_when_killed_is_restored(tmp_path):
    out = tmp_path / "pruned"
    old = tmp_path / f".pruned.old-{_dead_pid()}"
    old.mkdir()
    (old / METADATA_FILE).write_text(json.dumps({"method": "wanda"}))
    assert recover_leftovers(out) == [old]
    assert json.loads((out / METADATA_FILE).read_text()) == {"method": "wanda"} and not old.exists()


def test_leftovers_of_live_processes_are_left_alone(tmp_path):
    live = tmp_path / f".pruned.tmp-{os.getpid()}-abc"
    live.mkdir()
    (live / PARTIAL_MARKER).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    assert recover_leftovers(tmp_path / "pruned") == [] and live.is_dir()
