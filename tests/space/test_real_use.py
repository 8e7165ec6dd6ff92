"""The page under real use: a Hub outage at start-up, hostile settings, and multi-byte text streamed token by token."""

from __future__ import annotations

import shutil
import sys
import time

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from transformers import AutoTokenizer

from hfprune.space.serve import load_app_module

from ..hub_mirror import free_port, publish
from .conftest import TEXTS


@pytest.fixture
def app():
    return load_app_module()


@pytest.fixture
def loading(app):
    """The page's module that reads the ``COMPARE_LOAD_*`` settings (app.py does not re-export them)."""
    return sys.modules[app.ModelPair.__module__]


def test_a_hub_outage_at_start_up_shows_a_status_and_the_page_recovers(
    app, loading, write_hub, olah_server, space_models, monkeypatch, tmp_path
):
    publish(olah_server.mirror_root, "tester/space-dense", space_models.dense)
    pruned = tmp_path / "pruned"  # without its PNG: olah fails to list a tree holding a non-LFS binary file
    shutil.copytree(space_models.pruned, pruned, ignore=shutil.ignore_patterns("*.png"))
    publish(olah_server.mirror_root, "tester/space-pruned", pruned)
    monkeypatch.setattr(loading, "LOAD_ATTEMPTS", 2)
    monkeypatch.setattr(loading, "LOAD_BACKOFF_S", 0.05)
    monkeypatch.setattr(loading, "RELOAD_EVERY_S", 0.2)
    write_hub.reads_down = True  # the Hub answers 503 to every read

    demo = app.build_app(dense="tester/space-dense", pruned="tester/space-pruned")  # starts anyway

    assert demo.models.models is None and "could not be loaded yet" in demo.models.status
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(AppError, match="The models are not available"):
            client.predict("the quick brown fox", 4, 0, 1, 0, api_name="/generate")
        write_hub.reads_down = False  # the Hub is back: the background retry loads both models
        deadline = time.monotonic() + 60
        while demo.models.models is None:
            assert time.monotonic() < deadline, demo.models.status
            time.sleep(0.1)
        dense_text, pruned_text, *_ = client.predict("the quick brown fox", 4, 0, 1, 0, api_name="/generate")
        assert dense_text and pruned_text and demo.models.status_markdown() == ""
    finally:
        demo.close()


def test_a_model_that_can_never_load_fails_at_once(app, loading, write_hub, monkeypatch):
    monkeypatch.setattr(loading, "LOAD_BACKOFF_S", 30.0)  # a retry would make this test time out
    started = time.monotonic()
    with pytest.raises(app.ModelLoadError, match="tester/no-such-model"):
        app.build_app(dense="tester/no-such-model", pruned="tester/no-such-model")
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("temperature", [1e-300, 1e-5, -1, 2.5, float("nan")])
def test_temperatures_that_would_overflow_are_refused_on_the_server(app, temperature):
    with pytest.raises(gr.Error, match="temperature"):
        app.check_settings(8, temperature, 0.9, 0)
    assert app.check_settings(8, 0, 0.9, 0).temperature == 0  # greedy
    assert app.check_settings(8, app.TEMPERATURE_MIN, 0.9, 0).temperature == app.TEMPERATURE_MIN


@pytest.mark.parametrize(
    "text", ["Die Großklutzung überrascht äußerst", "学习一门新语言最好的方法", "नई भाषा सीखने का सबसे अच्छा तरीका"]
)
def test_multi_byte_text_streams_without_replacement_characters(app, space_models, text):
    """Byte-level tokens end inside multi-byte characters: no update may show U+FFFD, each extends the last."""
    tokenizer = AutoTokenizer.from_pretrained(space_models.dense)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) > len(text.split()), "the test needs a text split inside its characters"
    shown = [app.visible_text(tokenizer, ids[:k]) for k in range(1, len(ids) + 1)]
    assert all("\ufffd" not in update for update in shown)
    assert all(later.startswith(earlier) for earlier, later in zip(shown, shown[1:]))
    assert shown[-1] == tokenizer.decode(ids) == text
    broken = tokenizer.decode(ids[:-1]) if tokenizer.decode(ids[:-1]).endswith("\ufffd") else None
    if broken is not None:  # a generation cut inside the last character ends before it
        assert app.visible_text(tokenizer, ids[:-1]) == broken.rstrip("\ufffd")


def test_generation_uses_the_current_cache_api(app, space_models, recwarn):
    loaded = app.load_model(str(space_models.dense), app.pick_device("cpu"))
    stream = app.TokenStream(loaded, [1, 5, 9], app.check_settings(6, 0, 1, 0))
    while not stream.done:
        stream.step()
    assert not [w for w in recwarn if "past_key_values" in str(w.message)]
    assert TEXTS  # the fixture's texts trained the tokenizer the stream decodes with
