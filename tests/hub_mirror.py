"""Test helpers for a local Hub: publish a folder as a git repo in olah's mirror layout, point huggingface_hub at it.

olah serves ``<mirror_root>/<type>/<owner>/<name>`` (a git working copy) read-only. Large files on the Hub
live in git LFS; olah reads an LFS pointer from git and the bytes from ``.git/lfs/objects/aa/bb/<oid>``,
which this helper writes itself, so no git-lfs binary is needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LFS_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.bin")
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "hfprune tests",
    "GIT_AUTHOR_EMAIL": "tests@hfprune.invalid",
    "GIT_COMMITTER_NAME": "hfprune tests",
    "GIT_COMMITTER_EMAIL": "tests@hfprune.invalid",
}


@dataclasses.dataclass(frozen=True)
class OlahServer:
    url: str
    mirror_root: Path  # publish() repos here
    log: Path


@contextlib.contextmanager
def start_olah(root: Path) -> Iterator[OlahServer]:
    """olah on 127.0.0.1:<free port>, offline, serving git repos from ``root/mirrors``; stopped on exit.

    olah quirks handled here and in hfprune/hub/:
    - The config file wins over command-line flags entirely, so every setting lives in the TOML.
    - Besides ``offline = true``, the upstream (``hf-netloc``) points at a dead loopback port, so even a code
      path that ignores offline mode cannot leave the machine.
    - ``metadata-cache-ttl = 0``: otherwise a branch is resolved to a commit once and reused for 10 minutes,
      and a test that publishes a new commit would pull the old one.
    - The mirror is ``<mirror_root>/models/<owner>/<name>``, a git *working copy*; LFS bytes are read from
      ``.git/lfs/objects/aa/bb/<oid>`` for pointer files of 120-150 bytes.
    - Offline, olah answers a missing branch/tag with 401 ``RepoNotFound`` and a missing commit with 404
      ``EntryNotFound`` (huggingface.co says ``RevisionNotFound``); hfprune/hub_errors.py tells these apart with
      one request for ``main``. It also answers 401 for a missing *path* in a tree listing, and 500 when listing
      a tree that holds a binary file committed without LFS.
    - It cannot represent a gated repo (its metadata always says ``gated: false``): see the stand-in in
      tests/test_hub.py.
    - olah writes logs under ``--log-path`` and a ``repos-path`` cache: both go under ``root``.
    """
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


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_hub_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path) -> None:
    """Send huggingface_hub to ``endpoint`` with an empty cache and no token, for one test.

    huggingface_hub reads its environment once, at import (``constants.ENDPOINT``, the cache paths, offline
    mode), so the environment *and* those constants are patched.
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def repo_path(mirror_root: Path, repo_id: str, repo_type: str = "models") -> Path:
    """Where olah looks for ``repo_id`` under ``mirror_root``."""
    return Path(mirror_root) / repo_type / repo_id


def publish(
    mirror_root: Path,
    repo_id: str,
    folder: Path,
    *,
    message: str = "Upload model",
    tag: str | None = None,
    repo_type: str = "models",
) -> str:
    """Commit ``folder``'s files as the new tip of ``main`` in the mirror repo; return the commit hash.

    Publishing again to the same ``repo_id`` adds a commit that replaces all files, as an upload would.
    Files matching :data:`LFS_PATTERNS` are stored as LFS pointers with their bytes in the LFS store.
    """
    repo = repo_path(mirror_root, repo_id, repo_type)
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "--quiet", "--initial-branch=main")
    _clear_worktree(repo)
    _write_gitattributes(repo)
    for source in sorted(Path(folder).rglob("*")):
        if source.is_file():
            _add_file(repo, source, source.relative_to(folder))
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag is not None:
        _git(repo, "tag", tag)
    return _git(repo, "rev-parse", "HEAD").strip()


def lfs_pointer(data_oid: str, size: int) -> str:
    """The text git-lfs commits in place of a large file (olah parses exactly this form)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{data_oid}\nsize {size}\n"


def _add_file(repo: Path, source: Path, relative: Path) -> None:
    target = repo / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not any(relative.match(pattern) for pattern in LFS_PATTERNS):
        shutil.copyfile(source, target)
        return
    data = source.read_bytes()
    oid = hashlib.sha256(data).hexdigest()
    store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(data)
    target.write_text(lfs_pointer(oid, len(data)))


def _write_gitattributes(repo: Path) -> None:
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in LFS_PATTERNS]
    (repo / ".gitattributes").write_text("\n".join(lines) + "\n")


def _clear_worktree(repo: Path) -> None:
    for entry in repo.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _git(repo: Path, *args: str) -> str:
    # No user config, hooks or filters from the machine: a plain, reproducible git.
    env = {**os.environ, **_GIT_IDENTITY, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return done.stdout
