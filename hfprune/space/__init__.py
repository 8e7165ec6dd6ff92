"""``hfprune space serve``: run the dense-vs-pruned comparison page on this machine.

The page itself lives in ``spaces/compare/`` at the top of the repository (``app.py`` and the ``compare_*.py``
files it imports, shipped in the wheel as data files): it must run on a Space where hfprune is not installed, so
it imports nothing from here. This package only loads ``app.py`` and checks what users pass; deploying the page
as a Space is a Hub action (:mod:`hfprune.hub.space`).
"""
