"""Where hfprune finds its data and keeps its caches (one place for environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

#: Overrides the shared data folder (the one holding ``flores/``, ``calib/``, ``xcopa/`` ...).
DATA_DIR_ENV = "HFPRUNE_DATA_DIR"
#: Overrides the cache folder (trained tiny model, evaluation cache).
CACHE_DIR_ENV = "HFPRUNE_CACHE"


def default_data_dir() -> Path | None:
    """The multilingual data folder: ``$HFPRUNE_DATA_DIR``, else a ``shared/data`` beside a parent folder.

    The project's checkout sits beside ``shared/`` in our environment (``../shared/data``); we look from
    the working directory and from the installed package upwards so both a checkout and an editable
    install find it. Returns ``None`` when there is none.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for parent in [start, *start.parents]:
            candidate = parent / "shared" / "data"
            if (candidate / "manifest.json").is_file():
                return candidate
    return None


def cache_dir() -> Path:
    """hfprune's own cache: ``$HFPRUNE_CACHE``, else ``$XDG_CACHE_HOME/hfprune``, else ``~/.cache/hfprune``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hfprune"
