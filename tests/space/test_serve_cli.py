"""hfprune space serve from the command line: a real run, and the mistakes users make, each a clear error."""

from __future__ import annotations

import contextlib
import fnmatch
import io
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from gradio_client import Client

from hfprune.cli import main
from hfprune.errors import PortInUseError
from hfprune.space.serve import serve

from ..hub_mirror import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def test_a_missing_model_folder_is_one_error_line_and_exit_2(tmp_path, space_models):
    code, err = run(["space", "serve", "--dense", str(space_models.dense), "--pruned", str(tmp_path / "missing")])

    assert code == 2
    assert err.startswith(f"error: --pruned '{tmp_path / 'missing'}' is not a folder here") and err.count("\n") == 1


def test_a_folder_without_safetensors_is_refused_before_anything_is_unpickled(tmp_path, space_models):
    folder = tmp_path / "pickled"
    shutil.copytree(space_models.dense, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")

    code, err = run(["space", "serve", "--dense", str(folder), "--pruned", str(space_models.pruned)])

    assert code == 2 and "no *.safetensors weights" in err and "Traceback" not in err


def test_a_busy_port_says_to_pick_another(space_models):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match="--port"):
            serve(str(space_models.dense), str(space_models.pruned), port=port, block=False)


def test_the_command_serves_until_interrupted(space_models):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "hfprune",
        "space",
        "serve",
        "--dense",
        str(space_models.dense),
        "--pruned",
        str(space_models.pruned),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()  # printed once the page listens
        assert line.startswith(f"dense vs pruned on http://127.0.0.1:{port}"), line + process.stdout.read()
        dense, pruned, *_ = Client(f"http://127.0.0.1:{port}", verbose=False).predict(
            "the fox", 4, 0.0, 1.0, 0, api_name="/generate"
        )
        assert dense and pruned
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    time.sleep(0.1)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the server kept listening after Ctrl+C"


def test_the_wheel_ships_every_file_of_the_space():
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    patterns = data_files["share/hfprune/spaces/compare"]
    for path in (ROOT / "spaces" / "compare").iterdir():
        if path.is_file():
            assert any(fnmatch.fnmatch(f"spaces/compare/{path.name}", p) for p in patterns), path.name
