"""``hfprune space serve``: run the dense-vs-pruned comparison page on this machine.

The page itself lives in ``spaces/compare/app.py`` at the top of the repository (shipped in the wheel as a data
file): it must run on a Space where hfprune is not installed, so it imports nothing from here. This package only
finds that file and checks what users pass; deploying it as a Space is a Hub action (:mod:`hfprune.hub.space`).
"""
