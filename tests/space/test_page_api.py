"""The comparison page through its API (gradio_client), as a script or another app would use it."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from hfprune.space.serve import load_app_module

PROMPT = "the quick brown fox"


@pytest.fixture(scope="module")
def client(page) -> Client:
    return Client(page.url, verbose=False)


def generate(
    client: Client,
    prompt: str = PROMPT,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int = 7,
) -> list[tuple[str, str, str, str]]:
    """Every update the page streams for one generation, in order."""
    job = client.submit(prompt, max_new_tokens, temperature, top_p, seed, api_name="/generate")
    job.result(timeout=60)
    return [tuple(update) for update in job.outputs()]


def test_both_outputs_stream_token_by_token_with_a_speed_each(client):
    updates = generate(client)

    dense_seen = [u[0] for u in updates]
    pruned_seen = [u[1] for u in updates]
    assert len(set(dense_seen)) > 1 and len(set(pruned_seen)) > 1, "each output must grow over several updates"
    assert all(len(a) <= len(b) for a, b in zip(dense_seen, dense_seen[1:]))  # text only ever grows
    dense_stats, pruned_stats = updates[-1][2], updates[-1][3]
    assert "tokens/s" in dense_stats and "tokens/s" in pruned_stats and "done" in dense_stats
    assert updates[-1][0] != updates[-1][1], "a 50%-pruned random model should not write what the dense one writes"


def test_same_seed_same_text_other_seed_other_text(client):
    first, again, other = generate(client, seed=7)[-1], generate(client, seed=7)[-1], generate(client, seed=8)[-1]

    assert first[:2] == again[:2]
    assert other[:2] != first[:2]


def test_greedy_ignores_the_seed(client):
    assert generate(client, temperature=0.0, seed=1)[-1][:2] == generate(client, temperature=0.0, seed=2)[-1][:2]


@pytest.mark.parametrize(
    ("prompt", "max_new_tokens", "message"),
    [
        ("x" * 2001, 8, "limit is 2000"),  # characters
        ("文" * 700, 8, "limit is 512"),  # under 2000 characters, over 512 tokens
        ("   ", 8, "Type a prompt"),
        (PROMPT, 257, "256"),  # the slider's bound, checked on the server
    ],
)
def test_limits_reject_oversize_requests_with_a_message(client, prompt, max_new_tokens, message):
    with pytest.raises(AppError, match=message):
        generate(client, prompt=prompt, max_new_tokens=max_new_tokens)


def test_the_page_rechecks_settings_itself_not_only_through_the_sliders(page):
    app = load_app_module()

    for bad in [
        (0, 1, 1, 0),
        (257, 1, 1, 0),
        (8, 2.5, 1, 0),
        (8, 1, 0.0, 0),
        (8, 1, 1, -1),
        (8.5, 1, 1, 0),
        ("x", 1, 1, 0),
    ]:
        with pytest.raises(gr.Error):
            app.check_settings(*bad)
    assert app.check_settings(256, 0, 1, 2**31 - 1).max_new_tokens == 256


def test_score_gives_per_token_logprobs_for_both_models_and_the_first_divergence(client):
    summary_md, summary, table, _plot = client.predict(PROMPT + " jumps over the lazy dog", api_name="/score")

    rows = table["data"]
    assert table["headers"][:4] == ["position", "token", "dense_logprob", "pruned_logprob"]
    assert summary["tokens_scored"] == len(rows) > 3
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))  # position 0 has nothing before it
    assert all(row[2] <= 0 and row[3] <= 0 for row in rows)  # log-probabilities
    assert abs(sum(row[2] for row in rows) - summary["dense"]["total_logprob"]) < 1e-2
    first = summary["first_divergence"]
    assert first is not None and 1 <= first["position"] <= len(rows)
    assert all(row[5] == row[6] for row in rows[: first["position"] - 1])  # same top-1 before the divergence
    assert f"position {first['position']}" in summary_md and "top-1" in summary["definition"]


def test_score_of_the_dense_model_against_itself_never_diverges(space_models):
    app = load_app_module()
    dense = app.load_model(str(space_models.dense), app.pick_device("cpu"))

    result = app.score_prompt(dense, dense, PROMPT)

    assert result["first_divergence"] is None and result["first_large_gap"] is None


def test_header_shows_both_ids_and_how_the_model_was_pruned():
    app = load_app_module()
    record = {
        "method": "wanda",
        "achieved_sparsity": 0.4987,
        "target_sparsity": 0.5,
        "structure": "unstructured",
        "calibration": {"mix": "en:64,sw:64"},
    }

    text = app.header_markdown("acme/dense", "me/pruned", record)

    for expected in ("`acme/dense`", "`me/pruned`", "`wanda`", "49.9%", "target 50%", "`en:64,sw:64`"):
        assert expected in text
    assert "no `hfprune.json`" in app.header_markdown("a/b", "c/d", {})


def test_every_flores_language_has_example_prompts():
    from ..data_dirs import data_dir

    data = data_dir()
    flores = {p.name.split(".")[0] for p in (data / "flores").glob("*.devtest.txt")} if data else set()
    app = load_app_module()
    for code in {"en", "de", "fr", "es", "ru", "zh", "ar", "sw", "hi", "ja", *flores}:
        assert app.EXAMPLES[code][1], code
