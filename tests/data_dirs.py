"""Where the tests read data: the team's full bundle when it is there (CI and our machines), else what ships.

The full bundle (``../shared/data`` beside the checkout, or ``$HFPRUNE_DATA_DIR``) holds every corpus, the
shipped data (``hfprune/data/``) a licensed subset. ``tests/conftest.py`` points ``HFPRUNE_DATA_DIR`` at the
full bundle when there is one, so the product reads it as a user's data folder; a clone without it runs on the
shipped data, and the tests that need a corpus the package does not ship skip with :data:`needs_full_data`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hfprune.constants import DATA_DIR_ENV
from hfprune.data_sources import shipped_data_dir

CHECKOUT = Path(__file__).resolve().parent.parent


def _full_bundle() -> Path | None:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    beside = CHECKOUT.parent / "shared" / "data"
    return beside if (beside / "manifest.json").is_file() else None


#: The full data bundle, or ``None`` in a clone that has only the shipped data.
FULL_DATA: Path | None = _full_bundle()

needs_full_data = pytest.mark.skipif(
    FULL_DATA is None,
    reason="needs the full data bundle (../shared/data beside the checkout, or HFPRUNE_DATA_DIR): a corpus or "
    "a language hfprune does not ship; CI has the bundle and runs it",
)


def data_dir() -> Path:
    """The data folder the product reads first in these tests: the full bundle, else the shipped data."""
    return FULL_DATA if FULL_DATA is not None else shipped_data_dir()
