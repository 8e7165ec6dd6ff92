"""Fixtures for the Space tests: a tiny dense model and its pruned copy, the page serving them on loopback.

Both models are random-init tiny Llamas (milliseconds to make, no training): right for plumbing (streaming,
limits, scoring, deploy), never for claims about quality. The page is started once per test session and shared
by the API and the browser tests, as one server would be shared by its visitors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..hub_mirror import free_port
from ..model_factory import make_model, make_tokenizer, save_model_folder
from ..publish.conftest import TEST_TOKEN, make_pruned_folder, write_hub  # noqa: F401 - write_hub is a fixture

#: Where tests leave files for people to look at (the browser screenshot); ignored by git.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TEXTS = ["the quick brown fox jumps over the lazy dog"] * 20


@dataclass(frozen=True)
class SpaceModels:
    dense: Path
    pruned: Path


@dataclass(frozen=True)
class Page:
    url: str
    models: SpaceModels


def write_plot(path: Path) -> Path:
    """A small PNG standing in for the card's per-language plot (``hfprune card`` writes the real one)."""
    from PIL import Image

    Image.new("RGB", (64, 32), (40, 90, 160)).save(path)
    return path


@pytest.fixture(scope="session")
def space_models(tmp_path_factory: pytest.TempPathFactory) -> SpaceModels:
    """A dense tiny Llama and the same model pruned by magnitude (50%), with its hfprune.json and a plot."""
    root = tmp_path_factory.mktemp("space-models")
    dense = save_model_folder(make_model("llama", seed=0), make_tokenizer(TEXTS), root / "dense")
    pruned = make_pruned_folder(root / "pruned")  # the same seed-0 model, pruned, same tokenizer
    write_plot(pruned / "eval_results.png")
    return SpaceModels(dense=dense, pruned=pruned)


@pytest.fixture(scope="session")
def page(space_models: SpaceModels) -> Iterator[Page]:
    """``hfprune space serve`` (non-blocking) on 127.0.0.1 and a free port, for the whole session."""
    from hfprune.space.serve import serve

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    running = serve(str(space_models.dense), str(space_models.pruned), port=free_port(), block=False)
    try:
        yield Page(url=running.url, models=space_models)
    finally:
        running.close()
