"""The comparison page in a real headless browser: Debian's Chromium driven by Python playwright.

The screenshot is a test artifact: ``test-artifacts/space-compare.png`` at the top of the checkout (ignored by
git), and a copy in the test's ``tmp_path``. Needs ``apt-get install chromium`` (``.ci/run`` does it); without
it the test fails and says so, because a skipped browser test would hide a broken page.
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest
from gradio_client import Client

from .conftest import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
PROMPT = "the lazy dog"


def _chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser test needs Chromium at {CHROMIUM}: run `apt-get install -y chromium` (as root; .ci/run "
            "does it). playwright's own browser download (`playwright install`) is not used."
        )
    return CHROMIUM


def _loopback_only(route) -> None:
    """Keep the test hermetic: the page may ask for web fonts; only the local server is reachable."""
    host = urllib.parse.urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


def test_browser_types_a_prompt_generates_and_reads_both_outputs(page, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.route("**/*", _loopback_only)
            tab.goto(page.url, wait_until="domcontentloaded")
            header = tab.locator("#header")
            header.wait_for(timeout=30_000)
            for expected in (page.models.dense.as_posix(), page.models.pruned.as_posix(), "magnitude", "50.0%"):
                assert expected in header.inner_text()

            tab.locator("#language input").click()  # the language picker fills the prompt with an example
            tab.get_by_role("option", name="German (de)").click()
            tab.wait_for_function("() => document.querySelector('#prompt textarea').value.startsWith('Der beste Weg')")

            tab.locator("#prompt textarea").fill(PROMPT)
            tab.locator("#generate").click()
            tab.wait_for_function(
                """() => ['dense', 'pruned'].every(side =>
                       document.querySelector(`#${side}-output textarea`).value.length > 0 &&
                       document.querySelector(`#${side}-stats`).innerText.includes('done'))""",
                timeout=60_000,
            )
            dense_text = tab.locator("#dense-output textarea").input_value()
            pruned_text = tab.locator("#pruned-output textarea").input_value()
            stats = tab.locator("#dense-stats").inner_text() + tab.locator("#pruned-stats").inner_text()
            screenshot = tab.screenshot(path=str(tmp_path / "space-compare.png"), full_page=True)
        finally:
            browser.close()

    assert dense_text and pruned_text and stats.count("tokens/s") == 2
    assert len(screenshot) > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(tmp_path / "space-compare.png", ARTIFACTS / "space-compare.png")
    # The page showed what the API returns for the page's defaults (64 tokens, T 0.7, top-p 0.95, seed 0).
    api_dense, api_pruned, *_ = Client(page.url, verbose=False).predict(PROMPT, 64, 0.7, 0.95, 0, api_name="/generate")
    assert (dense_text, pruned_text) == (api_dense, api_pruned)
