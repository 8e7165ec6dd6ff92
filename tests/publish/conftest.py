"""Fixtures for publishing tests: the Hub write emulator in front of olah, and small pruned folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..hub_mirror import OlahServer, point_hub_at
from .hub_write_emulator import HubWriteEmulator

#: The one token the emulator accepts. Tests assert it never shows up in output, logs or files.
TEST_TOKEN = "hf_EmulatorTestToken_DoNotLeak_0123456789abcdef"


@pytest.fixture
def write_hub(olah_server: OlahServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubWriteEmulator]:
    """The write emulator on 127.0.0.1 (reads forwarded to olah), huggingface_hub pointed at it, logged in."""
    hub = HubWriteEmulator(mirror_root=olah_server.mirror_root, olah_url=olah_server.url, token=TEST_TOKEN)
    server, thread = hub.start()
    point_hub_at(monkeypatch, hub.url, tmp_path / "hf_home")
    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def make_pruned_folder(folder: Path, *, sparsity: float = 0.5, seed: int = 0, card: bool = True) -> Path:
    """A random-init Llama pruned by magnitude (no calibration: milliseconds) and saved as hfprune saves it."""
    import hfprune

    from ..model_factory import make_model, make_tokenizer

    model = make_model("llama", seed=seed)
    result = hfprune.prune(model, method="magnitude", sparsity=sparsity)
    result.base_model = {"id": "acme/base-llama", "revision": "main", "commit": "0" * 40}
    tokenizer = make_tokenizer(["the quick brown fox jumps over the lazy dog"] * 20)
    hfprune.save_pruned(model, tokenizer, result, folder, extra={"command": ["hfprune", "prune", "acme/base-llama"]})
    if card:
        (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- pruned\n- hfprune\n---\n# pruned\n")
    return folder


@pytest.fixture
def pruned_folder(tmp_path: Path) -> Path:
    return make_pruned_folder(tmp_path / "pruned")
