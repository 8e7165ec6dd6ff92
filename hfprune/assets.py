"""Files that live beside the package in the repository (card template, Space app) and ship in the wheel.

``model_cards/`` and ``spaces/`` are top-level folders so people can read and edit them without digging into
the package. A checkout (or editable install) uses them in place; a wheel installs them as data files under
``<prefix>/share/hfprune/`` (see ``[tool.setuptools.data-files]`` in pyproject.toml). This module finds
whichever is there, so callers never guess paths.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from .errors import AssetNotFoundError

#: Where a wheel puts the data files, relative to the environment's data root.
WHEEL_SHARE = Path("share") / "hfprune"


def asset_path(relative: str) -> Path:
    """The file or folder ``relative`` (e.g. ``"model_cards/hfprune_model_card.md"``, ``"spaces/compare"``).

    Looks in the checkout this package was imported from first, then in the installed data files.
    """
    candidates = [
        Path(__file__).resolve().parent.parent / relative,
        Path(sysconfig.get_path("data")) / WHEEL_SHARE / relative,
    ]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise AssetNotFoundError(
        f"hfprune's '{relative}' is missing (looked in {tried}). Reinstall hfprune (`pip install -e .` from "
        "a checkout, or the wheel)."
    )
