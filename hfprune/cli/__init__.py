"""The ``hfprune`` command line: a thin layer over the library. ``main`` parses and prints errors; ``options``
declares the options ``prune``, ``run`` and ``sweep`` share; every other module is one command."""

from .main import main

__all__ = ["main"]
