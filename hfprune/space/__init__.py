"""``hfprune space``: run the dense-vs-pruned comparison page locally, or deploy it as a Hugging Face Space.

The page itself lives in ``spaces/compare/app.py`` at the top of the repository (shipped in the wheel as a data
file): it must run on a Space where hfprune is not installed, so it imports nothing from here. This package only
finds that file, checks what users pass, and talks to the Hub.
"""
