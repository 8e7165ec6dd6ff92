"""The page (``spaces/compare/app.py``) runs on a Space without hfprune, so it carries copies of a few of
hfprune's constants; each copy is pinned here to the original, so the two can never drift apart."""

from __future__ import annotations

from hfprune import constants
from hfprune.models.placement import DEVICE_MAPS, Placement
from hfprune.space.serve import load_app_module


def test_each_copied_constant_equals_hfprunes():
    app = load_app_module()
    assert app.METADATA_FILE == constants.METADATA_FILE
    assert app.LOCAL_RECORD == constants.LOCAL_RECORD
    assert app.PLOT_FILE == constants.PLOT_FILE
    assert tuple(app.DEVICE_MAPS) == tuple(DEVICE_MAPS)


def test_the_page_reads_a_placement_as_hfprune_reads_it():
    """The page gets the placement as the strings hfprune passes it; both parsers give the same limits."""
    app = load_app_module()
    text = "0=2GiB,cpu=8GiB"
    ours, page = Placement.parse("auto", text), app.Placement.parse("auto", text)
    assert page.device_map == ours.device_map and dict(page.max_memory) == ours.max_memory
