"""Shared pytest fixtures: the trained tiny model, and a real Hub server (olah) on loopback.

The product reads the team's full data bundle as a user's ``HFPRUNE_DATA_DIR`` when it is beside the checkout
(see ``data_dirs.py``); without it, the shipped data serves.
"""

from __future__ import annotations

import os

# The tests never ask the real Hub (this machine has no network): hfprune's default order of sources then stops
# at the shipped data, as it does for a user offline. The local-Hub fixtures below lift it for their server.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfprune.constants import DATA_DIR_ENV

from .data_dirs import FULL_DATA
from .hub_mirror import OlahServer, point_hub_at, start_olah

if FULL_DATA is not None:
    os.environ.setdefault(DATA_DIR_ENV, str(FULL_DATA))


# --- the project's tiny trained model -------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Folder of the tiny multilingual Llama; trained once per machine (a few CPU minutes), then cached."""
    from hfprune.tiny_model import tiny_model_path

    return tiny_model_path()


# --- a local Hub: olah serving git mirrors --------------------------------------------------------
@pytest.fixture(scope="session")
def olah_server(tmp_path_factory) -> Iterator[OlahServer]:
    """olah on 127.0.0.1:<free port>, offline, serving git repos; stopped at session end (see ``start_olah``)."""
    with start_olah(tmp_path_factory.mktemp("olah")) as server:
        yield server


@pytest.fixture
def local_hub(olah_server: OlahServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> OlahServer:
    """The olah server, with huggingface_hub pointed at it and a fresh ``HF_HOME`` for this test."""
    point_hub_at(monkeypatch, olah_server.url, tmp_path / "hf_home")
    return olah_server
