"""Where hfprune's default text comes from, in one order said once.

For calibration text, perplexity text and task data alike, the first of these that has a language serves it:

1. the source the user names (``--calib-source``, ``--eval-source``): then only that one;
2. ``$HFPRUNE_DATA_DIR``: a folder in the layout of the shipped data (``calib/``, ``flores/``, ``xcopa/`` ...);
3. the data shipped inside the package (``hfprune/data/``, found with ``importlib.resources``, so a wheel
   works anywhere): see its ``SOURCES.md`` and ``LICENSES.md``;
4. a Hub dataset through ``datasets``, when the machine is online (not ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)
   and the language is not in a folder above; :data:`HUB_TEXT` names them.

A folder is a :class:`DataRoot`; :func:`data_roots` lists them in order, and every record names a file by its
root's :attr:`DataRoot.name` and its path inside the root, never by a path of this machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .constants import DATA_DIR_ENV
from .errors import DataFolderError

#: The name the shipped data is recorded under (``shipped:flores/en.devtest.txt``).
SHIPPED = "shipped"
#: Environment variables that keep ``datasets`` and ``huggingface_hub`` off the network.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class HubText:
    """A Hub dataset that holds one text per language: the fallback for a language no folder has."""

    dataset: str
    config: str  # ``{lang}`` (ISO 639-1) or ``{flores}`` (FLORES-200 code) is replaced
    split: str
    column: str
    licence: str
    gated: bool = False

    def describe(self) -> str:
        return f"{self.dataset} ({self.config}, {self.split})"


#: The Hub datasets behind each kind of default text (the README names them with their licences).
HUB_TEXT = {
    "calibration": HubText("wikimedia/wikipedia", "20231101.{lang}", "train", "text", "CC BY-SA 3.0 and GFDL"),
    "perplexity": HubText("openlanguagedata/flores_plus", "{flores}", "devtest", "text", "CC BY-SA 4.0", gated=True),
}


@dataclass(frozen=True)
class DataRoot:
    """One folder in the order of sources, with how it was chosen."""

    path: Path
    origin: str  # the flag, the environment variable or SHIPPED

    @property
    def name(self) -> str:
        """What records call this folder: ``shipped``, or the folder's own name (never a path of this machine)."""
        return SHIPPED if self.origin == SHIPPED else self.path.name

    def label(self) -> str:
        """How messages name it: ``the data shipped with hfprune``, ``HFPRUNE_DATA_DIR (/data)``, ``--data (/x)``."""
        return "the data shipped with hfprune" if self.origin == SHIPPED else f"{self.origin} ({self.path})"

    def find(self, relative: str) -> Path | None:
        path = self.path / relative
        return path if path.is_file() else None

    def record(self, relative: str) -> str:
        """How results name a file of this root: ``shipped:flores/en.devtest.txt``."""
        return f"{self.name}:{relative}"


def shipped_data_dir() -> Path:
    """The package's own data folder (a real folder: wheels and editable installs both unpack it)."""
    return Path(str(resources.files("hfprune") / "data"))


def data_roots(explicit: str | Path | None = None, *, flag: str = "--data") -> tuple[DataRoot, ...]:
    """The folders to look in, in order: ``explicit`` alone when given, else ``$HFPRUNE_DATA_DIR`` then the shipped data.

    Raises:
        DataFolderError: the named folder (or ``$HFPRUNE_DATA_DIR``) does not exist.
    """
    if explicit is not None:
        return (_existing(Path(explicit).expanduser(), flag),)
    roots = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        roots.append(_existing(Path(env).expanduser(), DATA_DIR_ENV))
    shipped = shipped_data_dir()
    if shipped.is_dir():
        roots.append(DataRoot(shipped, SHIPPED))
    return tuple(roots)


def find_file(roots: tuple[DataRoot, ...], relative: str) -> tuple[DataRoot, Path] | None:
    """The first root holding ``relative``, and the file."""
    for root in roots:
        path = root.find(relative)
        if path is not None:
            return root, path
    return None


def online() -> bool:
    """Whether the Hub may be asked: no offline switch is set (``datasets`` and ``huggingface_hub`` read the same)."""
    return not any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in OFFLINE_ENV)


def offline_reason() -> str:
    """Why the Hub is not asked, for messages."""
    names = [name for name in OFFLINE_ENV if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}]
    return f"not asked: {', '.join(names)} is set" if names else "online"


def tried(roots: tuple[DataRoot, ...], hub: str | None) -> str:
    """The sources tried, in order, for an error message."""
    places = [root.label() for root in roots] or ["no data folder"]
    if hub is not None:
        places.append(hub)
    return "; ".join(places)


def _existing(path: Path, origin: str) -> DataRoot:
    if not path.is_dir():
        raise DataFolderError(f"{origin} names {path}, which is not a folder; point it at an existing data folder")
    return DataRoot(path, origin)
