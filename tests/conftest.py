"""Shared pytest fixtures: the trained tiny model, and a real Hub server (olah) on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .hub_mirror import OlahServer, free_port, point_hub_at


# --- the project's tiny trained model -------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Folder of the tiny multilingual Llama; trained once per machine (a few CPU minutes), then cached."""
    from hfprune.models.tiny import tiny_model_path

    return tiny_model_path()


# --- a local Hub: olah serving git mirrors --------------------------------------------------------
@pytest.fixture(scope="session")
def olah_server(tmp_path_factory) -> Iterator[OlahServer]:
    """olah on 127.0.0.1:<free port>, offline, serving git repos from ``mirror_root``; stopped at session end.

    olah quirks handled here and in hfprune/hub.py:
    - The config file wins over command-line flags entirely, so every setting lives in the TOML.
    - Besides ``offline = true``, the upstream (``hf-netloc``) points at a dead loopback port, so even a code
      path that ignores offline mode cannot leave the machine.
    - ``metadata-cache-ttl = 0``: otherwise a branch is resolved to a commit once and reused for 10 minutes,
      and a test that publishes a new commit would pull the old one.
    - The mirror is ``<mirror_root>/models/<owner>/<name>``, a git *working copy*; LFS bytes are read from
      ``.git/lfs/objects/aa/bb/<oid>`` for pointer files of 120-150 bytes.
    - Offline, olah answers a missing branch/tag with 401 ``RepoNotFound`` and a missing commit with 404
      ``EntryNotFound`` (huggingface.co says ``RevisionNotFound``); hub.py tells these apart with one
      request for ``main``.
    - It cannot represent a gated repo (its metadata always says ``gated: false``): see the stand-in in
      tests/test_hub.py.
    - olah writes logs under ``--log-path`` and a ``repos-path`` cache: both go into the temp folder.
    """
    root = tmp_path_factory.mktemp("olah")
    mirror_root = root / "mirrors"
    (mirror_root / "models").mkdir(parents=True)
    port, dead_port = free_port(), free_port()
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{root / "repos"}"\nmirrors-path = ["{mirror_root}"]\n'
        f'hf-scheme = "http"\nhf-netloc = "127.0.0.1:{dead_port}"\nhf-lfs-netloc = "127.0.0.1:{dead_port}"\n'
        "metadata-cache-ttl = 0\n"
        "[accessibility]\noffline = true\n"
    )
    log = root / "olah.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "--config", str(config), "--log-path", str(root / "logs")],
            cwd=root,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(process, port, log)
        yield OlahServer(url=f"http://127.0.0.1:{port}", mirror_root=mirror_root, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(process: subprocess.Popen, port: int, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"olah did not listen on port {port} within {timeout:.0f}s:\n{log.read_text(errors='replace')}")


@pytest.fixture
def local_hub(olah_server: OlahServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> OlahServer:
    """The olah server, with huggingface_hub pointed at it and a fresh ``HF_HOME`` for this test."""
    point_hub_at(monkeypatch, olah_server.url, tmp_path / "hf_home")
    return olah_server
